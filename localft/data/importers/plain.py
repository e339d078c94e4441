"""Plain text and Markdown: one post per file, or several posts separated by a line holding only `---`.

A leading `---` block of `key: value` lines is front matter (title, date), not a post.
"""

from __future__ import annotations

import re

from localft.config import DataSpec
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
_FRONT_LINE = re.compile(r"^[A-Za-z_][\w-]*\s*:.*$")


def detect(src: ExportSource) -> bool:
    names = src.names()
    return bool(names) and all(n.lower().endswith(TEXT_SUFFIXES) for n in names)


def read_text_posts(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    names = [n for n in src.names() if n.lower().endswith(TEXT_SUFFIXES)] or (
        src.names() if src.is_single_file else []
    )
    if not names:
        raise DataError(f"{src.path} holds no .txt or .md files; pass a folder of posts or one text file")
    posts = []
    for name in sorted(names):
        text = src.read_text(name)
        meta, text = _front_matter(text)
        for i, chunk in enumerate(re.split(r"(?m)^---[ \t]*$", text)):
            tally.read += 1
            chunk = chunk.strip()
            if not chunk:
                tally.drop("empty")
                continue
            posts.append(
                Post(
                    text=chunk,
                    source_id=f"{name}#{i + 1}",
                    date=meta.get("date", ""),
                    title=meta.get("title", "") if i == 0 else "",
                    meta={"file": name},
                )
            )
    return posts, None


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    block = text[4:end] if end > 0 else ""
    lines = [line for line in block.split("\n") if line.strip()]
    if not lines or not all(_FRONT_LINE.match(line) for line in lines):
        return {}, text
    meta = {}
    for line in lines:
        key, _, value = line.partition(":")
        meta[key.strip().lower()] = value.strip().strip("\"'")
    rest = text[end + 4 :]
    return meta, rest.split("\n", 1)[1] if "\n" in rest else ""
