"""Importers for platform exports and prepared datasets, and the format auto-detection."""

from __future__ import annotations

from collections.abc import Callable

from localft.config import DataSpec
from localft.data.importers import (
    bluesky,
    facebook,
    linkedin,
    mastodon,
    plain,
    prepared,
    reddit,
    substack,
    threads,
    x,
)
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource, shown
from localft.errors import DataError

Importer = Callable[[ExportSource, DataSpec, Tally], tuple[list[Post], "str | None"]]

IMPORTERS: dict[str, Importer] = {
    "linkedin": linkedin.read_linkedin,
    "x": x.read_x,
    "mastodon": mastodon.read_mastodon,
    "substack": substack.read_substack,
    "threads": threads.read_threads,
    "facebook": facebook.read_facebook,
    "bluesky": bluesky.read_bluesky,
    "reddit": reddit.read_reddit,
    "text": plain.read_text_posts,
    "jsonl": prepared.read_column_posts,
    "csv": prepared.read_column_posts,
    "chat": prepared.read_chat,
    "completions": prepared.read_completions,
    "textrows": prepared.read_text_rows,
}
ALIASES = {
    "twitter": "x",
    "tweets": "x",
    "markdown": "text",
    "md": "text",
    "txt": "text",
    "bsky": "bluesky",
    "fb": "facebook",
}
PLATFORM_NAMES = {
    "linkedin": "LinkedIn", "x": "X", "mastodon": "Mastodon", "substack": "Substack", "threads": "Threads",
    "facebook": "Facebook", "bluesky": "Bluesky", "reddit": "Reddit", "text": "text",
    "jsonl": "JSONL", "csv": "CSV", "chat": "chat JSONL", "completions": "completions JSONL", "textrows": "text JSONL", "hf": "Hugging Face dataset",
}  # fmt: skip


# Platform exports in the order their files are checked; generic tables and text come after.
DETECTORS = (
    ("linkedin", linkedin), ("x", x), ("mastodon", mastodon), ("substack", substack), ("threads", threads),
    ("facebook", facebook), ("bluesky", bluesky), ("reddit", reddit),
)  # fmt: skip
PLATFORMS = ", ".join(name for name, _ in DETECTORS)


def detect_format(src: ExportSource, requested: str = "auto") -> str:
    """The importer name for `src`: the requested one, or the one its files identify."""
    fmt = ALIASES.get(requested.lower(), requested.lower())
    names = src.names()
    if not names:
        raise DataError(f"{src.path} is empty (no files); pass the export archive or folder")
    single = names[0].lower() if len(names) == 1 else ""
    if fmt == "text" and single.endswith((".jsonl", ".ndjson")):
        return "textrows"  # `--format text` on JSONL means {"text": ...} rows trained as they are
    if fmt != "auto":
        if fmt not in IMPORTERS:
            raise DataError(
                f"unknown format {requested!r}; use one of: auto, {', '.join(k for k in IMPORTERS if k != 'textrows')}"
            )
        return fmt
    for name, module in DETECTORS:
        if module.detect(src):
            return name
    data_files = [n for n in names if n.lower().endswith((".jsonl", ".ndjson", ".json", ".csv"))]
    if len(data_files) == 1:
        only = data_files[0]
        if only.lower().endswith(".csv"):
            head = src.read_text(only).split("\n", 1)[0]
            return "linkedin" if "ShareCommentary" in head else "csv"
        if only.lower().endswith(".json") and "orderedItems" in src.read_text(only)[:4096]:
            return "mastodon"
        return prepared.sniff_jsonl(src, only)
    if plain.detect(src):
        return "text"
    if single.endswith(".js"):
        return "x"
    listed = ", ".join(shown(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
    raise DataError(
        f"cannot tell which export {src.path} is (files: {listed}); "
        f"pass --format {PLATFORMS}, text, jsonl, csv, chat or completions"
    )
