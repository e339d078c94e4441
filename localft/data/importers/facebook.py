"""Facebook posts (Meta's JSON export): your_facebook_activity/posts/your_posts_1.json (and _2, ...).

A post's text is the `post` item of its `data` list (or, for a photo post, the photo's description);
shares and uploads without words are skipped, and so are posts on other people's timelines unless asked.
"""

from __future__ import annotations

import re

from localft.config import DataSpec
from localft.data.importers.json_values import as_dict, as_list, as_text
from localft.data.importers.meta_json import iso_from_timestamp, read_meta_json
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource
from localft.errors import DataError

# your_posts_1.json; newer exports: your_posts__check_ins__photos_and_videos_1.json
_POSTS_FILE = re.compile(r"(^|/)your_posts(?:_[a-z_]*)?_(\d+)\.(json|html)$", re.IGNORECASE)
# "Maya Lindqvist wrote on Sam Okafor's timeline." is the title of a post on someone else's wall
_ON_OTHERS = re.compile(r"\b(?:wrote|posted) (?:on|to) .+'s? (?:timeline|profile|wall)", re.IGNORECASE)


def _post_files(src: ExportSource, suffix: str) -> list[str]:
    found = [n for n in src.names() if (m := _POSTS_FILE.search(n)) and m.group(3).lower() == suffix]
    return sorted(found, key=lambda n: int(_POSTS_FILE.search(n).group(2)))


def detect(src: ExportSource) -> bool:
    return bool(_post_files(src, "json") or _post_files(src, "html"))


def read_facebook(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = _post_files(src, "json")
    if not files:
        if _post_files(src, "html"):
            raise DataError(
                f"{src.path} is Facebook's HTML export; download your information again with the format set to JSON"
            )
        raise DataError(
            f"{src.path} has no posts/your_posts_1.json; pass the Facebook export (Download your information, JSON)"
        )
    posts = []
    for name in files:
        data = read_meta_json(src, name, "Facebook")
        if isinstance(data, dict):  # some exports wrap the list in a single-key object
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise DataError(
                f"{src.label(name)} holds no list of posts; pass the file from the export unchanged"
            )
        for i, entry in enumerate(data):
            tally.read += 1
            entry = as_dict(entry)
            title = as_text(entry.get("title"))
            if _ON_OTHERS.search(title) and not spec.include_replies:
                tally.drop("posts on others' timelines")
                continue
            text = post_text(entry)
            if not text:
                tally.drop("shares without text")
                continue
            posts.append(
                Post(
                    text=text,
                    source_id=f"{name.rsplit('/', 1)[-1]}#{i + 1}",
                    date=iso_from_timestamp(entry.get("timestamp")),
                    meta={"file": name, "title": title},
                )
            )
    return posts, _author(src)


def post_text(entry: dict) -> str:
    """The words of one post: its `post` item, else the caption of its first described photo or video."""
    for item in as_list(entry.get("data")):
        text = as_text(as_dict(item).get("post"))
        if text.strip():
            return text
    for attachment in as_list(entry.get("attachments")):
        for item in as_list(as_dict(attachment).get("data")):
            text = as_text(as_dict(as_dict(item).get("media")).get("description"))
            if text.strip():
                return text
    return ""


def _author(src: ExportSource) -> str | None:
    for name in src.find("profile_information.json"):
        try:
            data = as_dict(read_meta_json(src, name, "Facebook"))
        except DataError:
            return None
        profile = as_dict(data.get("profile_v2") or data.get("profile"))
        return as_text(as_dict(profile.get("name")).get("full_name")).strip() or None
    return None
