"""X long posts: data/note-tweet.js holds the whole text of each post over 280 characters, while its
tweet in tweets.js is cut short with "…". The two files share no id, so a note is matched to its tweet
by the tweet's text being the start of the note's, and by creation time where both have one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from localft.data.importers.json_values import as_dict, as_list, as_text
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource

NOTE_FILE = re.compile(r"(^|/)note-tweet(-part\d+)?\.js$", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")
_TRAILING_LINKS = re.compile(r"(?:\s*https?://\S+)+\s*$")
MATCH_SECONDS = 120  # a note and its tweet are created together; allow for clock skew
MIN_PREFIX = 20  # a shorter cut text could start several notes


@dataclass
class Note:
    text: str
    created: datetime | None
    key: str  # normalized text, for prefix matching


def read_notes(src: ExportSource, parse_ytd) -> list[Note]:
    """Every note in data/note-tweet.js (and its parts), with t.co links expanded."""
    notes = []
    for name in sorted(n for n in src.names() if NOTE_FILE.search(n)):
        for entry in parse_ytd(src.read_text(name), src.label(name)):
            note = as_dict(as_dict(entry).get("noteTweet"))
            core = as_dict(note.get("core"))
            text = as_text(core.get("text"))
            for url in map(as_dict, as_list(core.get("urls"))):
                short, expanded = as_text(url.get("shortUrl")), as_text(url.get("expandedUrl"))
                if short and expanded:
                    text = text.replace(short, expanded)
            if text.strip():
                notes.append(Note(text.strip(), _when(as_text(note.get("createdAt"))), _normalize(text)))
    return notes


def restore_long_posts(posts: list[Post], notes: list[Note], tally: Tally) -> None:
    """Replace the text of each cut-short tweet with its note's full text, in place."""
    unused = list(notes)
    for post in posts:
        body = _TRAILING_LINKS.sub("", post.text).rstrip()
        if not unused or not body.endswith(("…", "...")):
            continue
        prefix = _normalize(body.rstrip("….").rstrip())
        if len(prefix) < MIN_PREFIX:
            continue
        when = _when(post.date)
        candidates = [n for n in unused if n.key.startswith(prefix) and _close(when, n.created)]
        if not candidates:
            continue
        note = min(
            candidates, key=lambda n: abs((n.created - when).total_seconds()) if when and n.created else 0
        )
        unused.remove(note)
        post.text = note.text
        tally.change("long posts restored")


def _close(a: datetime | None, b: datetime | None) -> bool:
    return a is None or b is None or abs((a - b).total_seconds()) <= MATCH_SECONDS


def _normalize(text: str) -> str:
    return " ".join(_URL.sub(" ", text).casefold().split())


def _when(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else None
