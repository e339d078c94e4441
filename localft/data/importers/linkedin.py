"""LinkedIn data export: Shares.csv (Date, ShareLink, ShareCommentary, SharedUrl, MediaUrl, Visibility)."""

from __future__ import annotations

from localft.config import DataSpec
from localft.data.importers.csv_rows import read_csv
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

SHARES_COLUMNS = ("Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility")


def detect(src: ExportSource) -> bool:
    return bool(src.find("Shares.csv"))


def read_linkedin(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = src.find("Shares.csv")
    if not files:
        raise DataError(
            f"{src.path} has no Shares.csv; pass the LinkedIn data export archive (Basic_LinkedInDataExport_*.zip)"
        )
    posts = []
    for name in files:
        rows = read_csv(
            src.read_text(name), src.label(name), required=("Date", "ShareCommentary"),
            hint="this is not LinkedIn's Shares.csv; pass the file from the LinkedIn export unchanged",
        )  # fmt: skip
        for row in rows:
            tally.read += 1
            text = row.get("ShareCommentary", "").strip()
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
