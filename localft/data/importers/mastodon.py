"""Mastodon account archive: outbox.json (ActivityStreams). Create/Note posts; Announce (boosts) skipped.

Visibility comes from the addressing: Public in `to` = public, in `cc` = unlisted, else followers-only
or direct, which are kept only when asked. Content warnings (`summary`) stay as metadata.
"""

from __future__ import annotations

import json

from localft.config import DataSpec
from localft.data.html_text import html_to_text
from localft.data.importers.json_values import as_text
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_PUBLIC_NAMES = (PUBLIC, "as:Public", "Public")


def detect(src: ExportSource) -> bool:
    return bool(src.find("outbox.json"))


def read_mastodon(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = src.find("outbox.json") or ([src.names()[0]] if src.is_single_file else [])
    if not files:
        raise DataError(
            f"{src.path} has no outbox.json; pass the Mastodon archive (Preferences > Import and export)"
        )
    name = files[0]
    label = src.label(name)
    try:
        outbox = json.loads(src.read_text(name))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{label} line {exc.lineno}: not valid JSON ({exc.msg}); download the archive again"
        ) from None
    items = outbox.get("orderedItems") if isinstance(outbox, dict) else None
    if not isinstance(items, list):
        raise DataError(f"{label} has no orderedItems list; pass the outbox.json from a Mastodon archive")
    activities = [a for a in items if isinstance(a, dict)]
    own_ids = {_object(a).get("id") for a in activities if a.get("type") == "Create"}
    posts = []
    for i, activity in enumerate(activities):
        tally.read += 1
        if activity.get("type") == "Announce":
            tally.drop("boosts")
            continue
        note = _object(activity)
        if activity.get("type") != "Create" or note.get("type") not in ("Note", "Article", "Question"):
            tally.drop("not a post")
            continue
        visibility = _visibility(note or activity)
        if visibility in ("private", "direct") and not spec.include_private:
            tally.drop(f"{visibility} posts")
            continue
        parent = note.get("inReplyTo") or ""
        parent = parent if isinstance(parent, str) else ""
        own_thread = bool(parent) and parent in own_ids
        if parent and not own_thread and not spec.include_replies:
            tally.drop("replies to others")
            continue
        content = note.get("content")
        posts.append(
            Post(
                text=html_to_text(content) if isinstance(content, str) else "",
                source_id=str(note.get("id") or f"{name}:{i + 1}"),
                date=str(note.get("published") or activity.get("published") or ""),
                parent_id=parent if own_thread else "",
                meta={
                    "file": name,
                    "visibility": visibility,
                    "content_warning": as_text(note.get("summary")),
                },
            )
        )
    return posts, _author(src)


def _object(activity: dict) -> dict:
    obj = activity.get("object")
    return obj if isinstance(obj, dict) else {}


def _visibility(obj: dict) -> str:
    to, cc = _addresses(obj.get("to")), _addresses(obj.get("cc"))
    if any(a in _PUBLIC_NAMES for a in to):
        return "public"
    if any(a in _PUBLIC_NAMES for a in cc):
        return "unlisted"
    if any(a.endswith("/followers") for a in to + cc):
        return "private"
    return "direct"


def _addresses(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _author(src: ExportSource) -> str | None:
    for name in src.find("actor.json"):
        try:
            actor = json.loads(src.read_text(name))
        except (DataError, json.JSONDecodeError):
            return None
        if isinstance(actor, dict) and isinstance(actor.get("name"), str):
            return actor["name"].strip() or None
    return None
