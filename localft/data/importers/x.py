"""X / Twitter archive: data/tweets.js (+ tweets-part1.js ...), `window.YTD.tweets.partN = [...]`.

Text is HTML-escaped and links are t.co: unescape, expand through entities.urls, drop media links.
Retweets are skipped, replies to others dropped unless asked, self-replies kept as thread parts.
A long post's cut text is replaced by its whole text from data/note-tweet.js (see x_notes).
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime

from localft.config import DataSpec
from localft.data.importers.json_values import as_dict, as_list
from localft.data.importers.x_notes import read_notes, restore_long_posts
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

_PREFIX = re.compile(r"^\s*window\.YTD\.[A-Za-z0-9_]+\.part\d+\s*=\s*")
TWEET_FILES = ("tweets.js", "tweet.js")


def detect(src: ExportSource) -> bool:
    return bool(_tweet_files(src))


def _tweet_files(src: ExportSource) -> list[str]:
    return [n for n in src.names() if re.search(r"(^|/)tweets?(-part\d+)?\.js$", n, re.IGNORECASE)]


def parse_ytd(text: str, label: str) -> list:
    """The JSON array inside a `window.YTD.x.partN = [...]` file (plain JSON is accepted too)."""
    body = _PREFIX.sub("", text, count=1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        offset = len(text) - len(body)
        line = text[: offset + exc.pos].count("\n") + 1
        cut = not body.rstrip().endswith("]")
        what = "ends in the middle (the file is cut off)" if cut else f"is not valid JSON ({exc.msg})"
        raise DataError(f"{label} line {line}: {what}; download the X archive again") from None
    if not isinstance(data, list):
        raise DataError(
            f"{label}: expected a list of tweets after 'window.YTD...', found {type(data).__name__}"
        )
    return data


def read_x(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = sorted(_tweet_files(src), key=_part_number)
    if not files:
        raise DataError(f"{src.path} has no data/tweets.js; pass the X archive (zip or folder)")
    account_id, author = _account(src)
    tweets = []
    for name in files:
        for i, entry in enumerate(parse_ytd(src.read_text(name), src.label(name))):
            tweet = entry.get("tweet", entry) if isinstance(entry, dict) else None
            if not isinstance(tweet, dict) or not isinstance(tweet.get("full_text"), str):
                raise DataError(
                    f"{src.label(name)} entry {i + 1}: not a tweet (no full_text); download the X archive again"
                )
            tweets.append((name, tweet))
    own_ids = {str(t.get("id_str", "")) for _, t in tweets}
    posts = []
    for name, tweet in tweets:
        tally.read += 1
        full = tweet["full_text"]
        if full.startswith("RT @"):
            tally.drop("retweets")
            continue
        parent = str(tweet.get("in_reply_to_status_id_str") or "")
        reply_user = str(tweet.get("in_reply_to_user_id_str") or "")
        self_reply = bool(parent) and (parent in own_ids or (account_id and reply_user == account_id))
        if (parent or reply_user) and not self_reply and not spec.include_replies:
            tally.drop("replies to others")
            continue
        posts.append(
            Post(
                text=tweet_text(tweet),
                source_id=str(tweet.get("id_str", "")),
                date=_iso(tweet.get("created_at", "")),
                parent_id=parent if self_reply else "",
                meta={"file": name, "lang": tweet.get("lang", "")},
            )
        )
    restore_long_posts(posts, read_notes(src, parse_ytd), tally)
    return posts, author


def tweet_text(tweet: dict) -> str:
    """full_text without leading @mentions of a reply, t.co expanded, media links removed, unescaped."""
    text = tweet["full_text"]
    start = _int((as_list(tweet.get("display_text_range")) or [0])[0])
    if 0 < start <= len(text) and text[:start].lstrip().startswith("@"):
        text = text[start:]
    entities = as_dict(tweet.get("entities"))
    for url in as_list(entities.get("urls")):
        if isinstance(url, dict) and isinstance(url.get("expanded_url"), str) and _nonempty(url.get("url")):
            text = text.replace(url["url"], url["expanded_url"])
    extended = as_dict(tweet.get("extended_entities"))
    for media in as_list(entities.get("media")) + as_list(extended.get("media")):
        if isinstance(media, dict) and _nonempty(media.get("url")):
            text = text.replace(media["url"], "")
    return html.unescape(text).strip()


def _account(src: ExportSource) -> tuple[str, str | None]:
    for name in src.find("account.js"):
        try:
            data = parse_ytd(src.read_text(name), src.label(name))
            account = data[0]["account"]
            return str(account.get("accountId", "")), account.get("accountDisplayName") or None
        except (DataError, LookupError, TypeError, AttributeError):
            break
    return "", None


def _nonempty(value) -> bool:
    return isinstance(value, str) and bool(value)


def _part_number(name: str) -> int:
    m = re.search(r"-part(\d+)\.js$", name)
    return int(m.group(1)) if m else 0


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _iso(created_at: str) -> str:
    try:
        return datetime.strptime(created_at, "%a %b %d %H:%M:%S %z %Y").isoformat()
    except (TypeError, ValueError):
        return str(created_at or "")
