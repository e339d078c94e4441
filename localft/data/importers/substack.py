"""Substack export: posts.csv (post_id, post_date, is_published, title, subtitle, ...) + posts/<post_id>.html.

Only published posts are read; drafts are counted and skipped.
"""

from __future__ import annotations

from localft.config import DataSpec
from localft.data.html_text import html_to_text
from localft.data.importers.csv_rows import read_csv
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError


def detect(src: ExportSource) -> bool:
    return bool(src.find("posts.csv")) and any(n.endswith(".html") and "posts/" in n for n in src.names())


def read_substack(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = src.find("posts.csv")
    if not files:
        raise DataError(f"{src.path} has no posts.csv; pass the Substack export (Settings > Export)")
    name = files[0]
    root = name[: -len("posts.csv")]
    html_files = {
        n.rsplit("/", 1)[-1][: -len(".html")]: n
        for n in src.names()
        if n.startswith(root + "posts/") and n.endswith(".html")
    }
    rows = read_csv(
        src.read_text(name), src.label(name), required=("post_id", "is_published"),
        hint="this is not Substack's posts.csv; pass the export folder or zip unchanged",
    )  # fmt: skip
    posts = []
    for line, row in enumerate(rows, start=2):
        tally.read += 1
        if row["is_published"].strip().lower() not in ("true", "1", "yes"):
            tally.drop("drafts")
            continue
        post_id = row["post_id"].strip()
        html_name = html_files.get(post_id)
        if html_name is None:
            raise DataError(
                f"{src.label(name)} line {line}: no posts/{post_id}.html for this published post; "
                "pass the whole export, not only posts.csv"
            )
        posts.append(
            Post(
                text=html_to_text(src.read_text(html_name)),
                source_id=post_id,
                date=row.get("post_date", "").strip(),
                kind="article",
                title=row.get("title", "").strip(),
                meta={
                    "file": html_name,
                    "subtitle": row.get("subtitle", "").strip(),
                    "audience": row.get("audience", ""),
                },
            )
        )
    return posts, None
