"""CSV reading shared by the LinkedIn, Substack and generic CSV importers: errors name the file and line."""

from __future__ import annotations

import csv
import io

from localft.data.source import shown
from localft.errors import DataError

csv.field_size_limit(16 * 1024 * 1024)


def read_csv(text: str, label: str, required: tuple[str, ...] = (), hint: str = "") -> list[dict[str, str]]:
    """Rows as dicts keyed by the stripped header; `required` columns must be present."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError(f"{label} has no header row; {hint or 'the first line must name the columns'}")
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            found = ", ".join(shown(h) for h in header[:8]) + (" ..." if len(header) > 8 else "")
            raise DataError(
                f"{label} line 1: missing column(s) {', '.join(missing)} (found: {found}); "
                f"{hint or 'pass the original export file'}"
            )
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            rows.append({h: (values[i] if i < len(values) else "") for i, h in enumerate(header)})
        return rows
    except csv.Error as exc:
        raise DataError(
            f"{label} line {reader.line_num}: broken CSV ({exc}); check the quoting or export the file again"
        ) from None
