"""Meta's JSON exports (Facebook, Threads): every UTF-8 byte is written as its own \\u00XX escape.

After json.loads each string is UTF-8 read as Latin-1 ("Ã©" for "é"); re-encoding repairs it exactly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from localft.data.source import ExportSource
from localft.errors import DataError


def repair_mojibake(value):
    """The text Meta meant, for a string or any JSON value holding strings; real Unicode is left alone."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            return value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):  # above U+00FF, or genuine Latin-1 text
            return value
    if isinstance(value, list):
        return [repair_mojibake(v) for v in value]
    if isinstance(value, dict):
        return {repair_mojibake(k): repair_mojibake(v) for k, v in value.items()}
    return value


def read_meta_json(src: ExportSource, name: str, what: str):
    """A JSON file from a Meta export, parsed and repaired; a broken file is a one-line DataError."""
    try:
        return repair_mojibake(json.loads(src.read_text(name)))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{src.label(name)} line {exc.lineno}: not valid JSON ({exc.msg}); download the {what} export again"
        ) from None


def iso_from_timestamp(value) -> str:
    """Unix seconds (as Meta writes them) to ISO 8601 UTC; "" for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    try:
        return datetime.fromtimestamp(value, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""
