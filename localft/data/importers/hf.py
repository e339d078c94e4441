"""Hugging Face datasets: a hub id or a local folder/file (parquet, arrow, JSON, CSV), read with `datasets`.

Rows with `messages` are chat, with `prompt`/`completion` completions; otherwise the text column holds posts.
"""

from __future__ import annotations

from pathlib import Path

from localft.config import DataSpec
from localft.data.importers.prepared import chat_posts, column_posts, completion_posts
from localft.data.posts import Post, Tally
from localft.errors import DataError

BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".json": "json", ".jsonl": "json", ".csv": "csv"}
MAX_ROWS = 200_000  # a style dataset is a person's posts; refuse to pull a pretraining corpus into memory


def is_local_dataset(path: Path) -> bool:
    return (
        path.is_file()
        and path.suffix.lower() in (".parquet", ".arrow")
        or (path.is_dir() and any(p.suffix.lower() in (".parquet", ".arrow") for p in path.rglob("*")))
    )


def load_rows(source: str) -> list[dict]:
    import datasets

    path = Path(source).expanduser()
    try:
        if path.is_file():
            loaded = datasets.load_dataset(BUILDERS.get(path.suffix.lower(), "json"), data_files=str(path))
        else:
            loaded = datasets.load_dataset(str(path) if path.exists() else source)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"dataset {source} cannot be loaded ({reason[:160]}); pass a local folder or a hub id you can reach"
        ) from None
    split = loaded["train"] if "train" in loaded else loaded[next(iter(loaded))]
    if len(split) > MAX_ROWS:
        raise DataError(f"dataset {source} has {len(split)} rows; take a slice of at most {MAX_ROWS} first")
    return split.to_list()


def read_hf(source: str, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    rows = load_rows(source)
    label = f"dataset {source}"
    numbered = list(enumerate(rows, start=1))
    if not rows:
        raise DataError(f"{label} has no rows; pass a dataset with one post per row")
    columns = set(rows[0])
    if "messages" in columns:
        return chat_posts(numbered, label, source, tally, unit="row"), None
    if {"prompt", "completion"} <= columns:
        return completion_posts(numbered, label, source, tally, unit="row"), None
    return column_posts(numbered, label, source, spec, tally, unit="row"), None
