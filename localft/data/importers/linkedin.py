"""LinkedIn data export: Shares.csv (Date, ShareLink, ShareCommentary, SharedUrl, MediaUrl, Visibility)
and the long-form articles, one HTML page each under Articles/Articles/ (title, dates, body).

LinkedIn wraps each line of a multi-line ShareCommentary in literal quotes, so after the CSV parse a
line break reads `"` newline `"`; `unwrap_commentary` undoes exactly that (see its docstring).
"""

from __future__ import annotations

import re

from localft.config import DataSpec
from localft.data.html_text import html_to_text
from localft.data.importers.csv_rows import read_csv
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

SHARES_COLUMNS = ("Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility")
SEAM = '"\n"'  # one line break of a wrapped commentary: the line's closing quote, newline, the next's opening
MIN_WRAPPED_FILE = 3  # posts that all open and close with a quote before a whole file counts as wrapped


_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_STAMP = re.compile(r"<p\s+class=\"(created|published)\"[^>]*>(.*?)</p>", re.IGNORECASE | re.DOTALL)
_WHEN = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?")


def detect(src: ExportSource) -> bool:
    return bool(src.find("Shares.csv") or _article_files(src))


def _article_files(src: ExportSource) -> list[str]:
    return sorted(
        n for n in src.names() if "articles/articles/" in "/" + n.lower() and n.lower().endswith(".html")
    )


def read_linkedin(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = src.find("Shares.csv")
    articles = _article_files(src)
    if not files and not articles:
        raise DataError(
            f"{src.path} has no Shares.csv; pass the LinkedIn data export archive (Basic_LinkedInDataExport_*.zip)"
        )
    posts = [post for name in articles if (post := _article(src, name, tally)) is not None]
    for name in files:
        rows = read_csv(
            src.read_text(name), src.label(name), required=("Date", "ShareCommentary"),
            hint="this is not LinkedIn's Shares.csv; pass the file from the LinkedIn export unchanged",
        )  # fmt: skip
        seamed, wrapped = wrapping(row.get("ShareCommentary", "") for row in rows)
        for row in rows:
            tally.read += 1
            raw = row.get("ShareCommentary", "")
            text = (unwrap_commentary(raw, wrapped) if seamed or wrapped else raw).strip()
            if not text:
                tally.drop("reshares without commentary")
                continue
            link = row.get("ShareLink", "")
            posts.append(
                Post(
                    text=text,
                    source_id=link.rsplit("/", 1)[-1] if link else f"{name}:{len(posts) + 1}",
                    date=_iso(row.get("Date", "")),
                    meta={
                        "file": name,
                        "visibility": row.get("Visibility", ""),
                        "link": link,
                        "shared_url": row.get("SharedUrl", ""),
                    },
                )  # fmt: skip
            )
    return posts, _author(src)


def wrapping(fields) -> tuple[bool, bool]:
    """(seamed, wrapped) for one Shares.csv. Seamed: most multi-line fields have a quote on both sides
    of every line break (as real exports have it; a field whose breaks are not so is left alone). Wrapped: the field's
    own first and last line carry the wrapping too; only a file where every post (a few at least) opens
    and closes with a quote is read so, since a single post can open and close with real quotes."""
    fields = [f for f in (f.strip(" \t") for f in fields) if f.strip()]
    multi = [f for f in fields if "\n" in f]
    seamed = sum(f.count("\n") == f.count(SEAM) for f in multi) * 2 > len(multi)
    ends = sum(len(f) >= 2 and f.startswith('"') and f.endswith('"') for f in fields)
    return seamed, ends == len(fields) >= MIN_WRAPPED_FILE


def unwrap_commentary(text: str, wrapped: bool = False) -> str:
    """The text as typed, from a ShareCommentary whose lines LinkedIn wrapped in quotes: each `"` newline
    `"` is one line break (an empty line reads `""`, a trailing break leaves a closing `"`), and a wrapped
    field also loses the quote opening its first line and the one closing its last. A field with a line
    break not between quotes was not written this way and is left as it is. Real quotes stay."""
    text = text.strip(" \t")
    if text.count("\n") != text.count(SEAM):
        return text
    if wrapped and len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1]
    return text.replace(SEAM, "\n")


def _article(src: ExportSource, name: str, tally: Tally) -> Post | None:
    """One article page: <h1> title, <p class="created|published"> dates, then the body."""
    tally.read += 1
    page = src.read_text(name)
    heading = _H1.search(page)
    stamps = {kind.lower(): html_to_text(inner) for kind, inner in _STAMP.findall(page)}
    if "published" not in stamps:
        tally.drop("article drafts")
        return None
    ends = [m.end() for m in (heading, *_STAMP.finditer(page)) if m is not None]
    when = _WHEN.search(stamps["published"])
    return Post(
        text=html_to_text(page[max(ends, default=0) :]),
        source_id=name.rsplit("/", 1)[-1][: -len(".html")],
        date=f"{when.group(1)}T{when.group(2)}" if when and when.group(2) else when.group(1) if when else "",
        kind="article",
        title=html_to_text(heading.group(1)) if heading else "",
        meta={"file": name},
    )


def _iso(date: str) -> str:
    date = date.strip()
    return date.replace(" ", "T", 1) if len(date) >= 19 and date[10] == " " else date


def _author(src: ExportSource) -> str | None:
    """The member's name from Profile.csv, when the export has it."""
    for name in src.find("Profile.csv"):
        try:
            rows = read_csv(src.read_text(name), src.label(name))
        except DataError:
            return None
        if rows:
            full = f"{rows[0].get('First Name', '')} {rows[0].get('Last Name', '')}".strip()
            return full or None
    return None
