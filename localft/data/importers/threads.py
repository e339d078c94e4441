"""Threads (Meta's JSON export): your_instagram_activity/threads/threads_and_replies.json.

Each entry's text is a `title` (on the entry or its first media item); `text_app_post.is_reply` marks a
reply, whose parent the export does not name, so replies are dropped unless asked for.
"""

from __future__ import annotations

from localft.config import DataSpec
from localft.data.importers.json_values import as_dict, as_list, as_text
from localft.data.importers.meta_json import iso_from_timestamp, read_meta_json
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

POSTS_FILE = "threads_and_replies.json"
POSTS_KEY = "text_post_app_text_posts"
PROFILE_KEY = "text_post_app_text_post_app_profile"


def detect(src: ExportSource) -> bool:
    return bool(src.find(POSTS_FILE, "threads_and_replies.html"))


def read_threads(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = src.find(POSTS_FILE)
    if not files:
        if src.find("threads_and_replies.html"):
            raise DataError(
                f"{src.path} is Meta's HTML export; request the Threads export again with the format set to JSON"
            )
        raise DataError(
            f"{src.path} has no threads/{POSTS_FILE}; pass the Threads export from Meta's Accounts Center (JSON)"
        )
    posts = []
    for name in files:
        data = read_meta_json(src, name, "Threads")
        items = data.get(POSTS_KEY) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise DataError(
                f"{src.label(name)} has no {POSTS_KEY} list; pass {POSTS_FILE} from the Threads export unchanged"
            )
        for i, item in enumerate(items):
            tally.read += 1
            item = as_dict(item)
            media = [as_dict(m) for m in as_list(item.get("media"))]
            texts = [as_text(item.get("title"))] + [as_text(m.get("title")) for m in media]
            text = next((t for t in texts if t.strip()), "")
            flags = [as_dict(item.get("text_app_post"))] + [as_dict(m.get("text_app_post")) for m in media]
            is_reply = any(f.get("is_reply") is True for f in flags)
            if is_reply and not spec.include_replies:
                tally.drop("replies")
                continue
            if not text:
                tally.drop("media without text")
                continue
            when = item.get("creation_timestamp") or next(
                (m.get("creation_timestamp") for m in media if m.get("creation_timestamp")), None
            )
            posts.append(
                Post(
                    text=text,
                    source_id=f"{name.rsplit('/', 1)[-1]}#{i + 1}",
                    date=iso_from_timestamp(when),
                    meta={"file": name, "reply": is_reply},
                )
            )
    return posts, _author(src)


def _author(src: ExportSource) -> str | None:
    """The profile's Name from threads/personal_information.json, when the export has it."""
    for name in src.find("threads/personal_information.json"):
        try:
            data = read_meta_json(src, name, "Threads")
        except DataError:
            return None
        profiles = as_list(as_dict(data).get(PROFILE_KEY))
        fields = as_dict(as_dict(profiles[0] if profiles else {}).get("string_map_data"))
        return as_text(as_dict(fields.get("Name")).get("value")).strip() or None
    return None
