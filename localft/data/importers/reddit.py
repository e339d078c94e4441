"""Reddit's data request export: posts.csv (id, permalink, date, ip, subreddit, gildings, title, url, body)
and comments.csv (..., link, parent, body, media). Large tables may come split as posts_1.csv, posts_2.csv.

A post is its title and, for a text post, its body (Markdown, kept as written); comments are replies to
other people and are read only with --include-replies.
"""

from __future__ import annotations

import re

from localft.config import DataSpec
from localft.data.importers.csv_rows import read_csv
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

_TABLE = re.compile(r"(?:^|/)(posts|comments)(?:_\d+)?\.csv$", re.IGNORECASE)
_GONE = ("[deleted]", "[removed]")  # what Reddit writes in place of a deleted or removed body
HINT = "this is not Reddit's {0}; pass the export from reddit.com/settings/data-request unchanged"


def _tables(src: ExportSource, kind: str) -> list[str]:
    return sorted(n for n in src.names() if (m := _TABLE.search(n)) and m.group(1).lower() == kind)


def detect(src: ExportSource) -> bool:
    if src.find("subscribed_subreddits.csv"):
        return True
    for name in _tables(src, "posts") + _tables(src, "comments"):
        try:
            head = src.read_text(name).split("\n", 1)[0].lower()
        except DataError:
            return False
        return "permalink" in head and "subreddit" in head
    return False


def read_reddit(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    post_files, comment_files = _tables(src, "posts"), _tables(src, "comments")
    if not post_files and not comment_files:
        raise DataError(f"{src.path} has no posts.csv or comments.csv; pass Reddit's data request export")
    posts = []
    for name in post_files:
        for row in _rows(src, name, ("id", "subreddit", "title", "body")):
            tally.read += 1
            title, body = row["title"].strip(), _body(row["body"])
            text = f"{title}\n\n{body}" if title and body else title or body
            if not text:
                tally.drop("deleted or empty")
                continue
            posts.append(_post(row, text, "post", name))
    for name in comment_files:
        for row in _rows(src, name, ("id", "subreddit", "body")):
            tally.read += 1
            if not spec.include_replies:
                tally.drop("comments")
                continue
            body = _body(row["body"])
            if not body:
                tally.drop("deleted or empty")
                continue
            posts.append(_post(row, body, "comment", name))
    return posts, None


def _rows(src: ExportSource, name: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    hint = HINT.format(name.rsplit("/", 1)[-1])
    return read_csv(src.read_text(name), src.label(name), required=required, hint=hint)


def _body(value: str) -> str:
    value = value.strip()
    return "" if value in _GONE else value


def _post(row: dict[str, str], text: str, kind: str, name: str) -> Post:
    return Post(
        text=text,
        source_id=row["id"].strip(),
        date=_iso(row.get("date", "")),
        kind=kind,
        meta={"file": name, "subreddit": row["subreddit"].strip(), "permalink": row.get("permalink", "")},
    )


def _iso(date: str) -> str:
    """'2023-06-15 14:30:00 UTC' -> '2023-06-15T14:30:00+00:00'; anything else as written."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?: UTC)?", date.strip())
    return f"{m.group(1)}T{m.group(2)}+00:00" if m else date.strip()
