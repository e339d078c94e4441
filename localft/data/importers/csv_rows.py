"""CSV reading shared by the LinkedIn, Substack, Reddit and generic CSV importers: errors name the file
and line. The delimiter is a comma, or a tab where the header has tabs and no comma (LinkedIn's 2018
export and other tab-separated files)."""

from __future__ import annotations

import csv
import io

from localft.data.source import shown
from localft.errors import DataError

csv.field_size_limit(16 * 1024 * 1024)


def read_csv(text: str, label: str, required: tuple[str, ...] = (), hint: str = "") -> list[dict[str, str]]:
    """Rows as dicts keyed by the stripped header; `required` columns must be present. Columns with a
    blank name and values past the header's last column (stray trailing commas) are left out."""
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{label} has no header row; {hint or 'the first line must name the columns'}")
        header = [h.strip().lstrip("\ufeff").strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(
                f"{label} line 1: missing column(s) {', '.join(missing)} (found: {columns_seen(header)}); "
                f"{hint or 'pass the original export file'}"
            )
        named = [(i, h) for i, h in enumerate(header) if h]
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            rows.append({h: (values[i] if i < len(values) else "") for i, h in named})
        return rows
    except csv.Error as exc:
        raise DataError(
            f"{label} line {reader.line_num}: broken CSV ({exc}); check the quoting or export the file again"
        ) from None


def columns_seen(columns: list[str], limit: int = 8) -> str:
    """The column names of a file, safe inside a one-line message."""
    names = [c for c in columns if c]
    return ", ".join(shown(c) for c in names[:limit]) + (" ..." if len(names) > limit else "")


def no_text_column(label: str, columns: list[str], asked: str | None = None) -> DataError:
    """The one error for a table whose text column is not found: the columns seen and how to pick one."""
    which = f" {shown(asked)!r}" if asked else ""
    return DataError(
        f"{label}: no text column{which} (columns: {columns_seen(columns)}); "
        "pick one with --text-column NAME (train, recipe run: --set data.text_column=NAME)"
    )
