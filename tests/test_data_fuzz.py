"""Random bytes and random CSV/JSON shapes, fed to every importer: a result or a clear DataError, nothing else."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localft.config import DataSpec
from localft.data.load import import_posts
from localft.errors import DataError

# LOCALFT_FUZZ_EXAMPLES=2000 for a longer hunt; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("LOCALFT_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FORMATS = ["auto", "linkedin", "x", "mastodon", "substack", "threads", "facebook", "bluesky", "reddit", "text", "jsonl",
           "csv", "chat", "completions"]  # fmt: skip
FILE_NAMES = [
    "Shares.csv",
    "data/tweets.js",
    "outbox.json",
    "posts.csv",
    "notes.md",
    "rows.jsonl",
    "table.csv",
    "your_instagram_activity/threads/threads_and_replies.json",
    "your_facebook_activity/posts/your_posts_1.json",
    "repo.car",
    "comments.csv",
    "Articles/Articles/a.html",
    "data/note-tweet.js",
    "export.zip",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
# Keys the importers look for, so random objects often reach deep into the parsing code.
KEYS = ["tweet", "full_text", "id_str", "entities", "urls", "url", "expanded_url", "display_text_range", "media",
        "in_reply_to_status_id_str", "in_reply_to_user_id_str", "created_at", "orderedItems", "type", "object",
        "content", "to", "cc", "inReplyTo", "summary", "id", "messages", "role", "content", "prompt", "completion",
        "text", "Create", "Announce", "Note", "account", "accountId", "text_post_app_text_posts", "title",
        "text_app_post", "is_reply", "creation_timestamp", "data", "post", "attachments", "description", "timestamp",
        "noteTweet", "core", "createdAt", "shortUrl", "expandedUrl"]  # fmt: skip
shaped = st.recursive(
    st.none()
    | st.integers()
    | st.text(max_size=40)
    | st.sampled_from(KEYS + ["https://www.w3.org/ns/activitystreams#Public"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=30,
)


def _import(files: dict[str, bytes], fmt: str, target: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "export"
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        try:
            import_posts(root / target if target else root, DataSpec(format=fmt, min_chars=0))
        except DataError as exc:
            assert "\n" not in str(exc) and str(exc)


@FUZZ
@given(data=st.binary(max_size=300), name=st.sampled_from(FILE_NAMES), fmt=st.sampled_from(FORMATS))
def test_random_bytes(data, name, fmt):
    _import({name: data}, fmt, target=name if name.endswith((".zip", ".csv", ".jsonl")) else "")


@FUZZ
@given(value=json_values | shaped, fmt=st.sampled_from(FORMATS), prefix=st.booleans())
def test_random_json_shapes(value, fmt, prefix):
    text = json.dumps(value)
    ytd = ("window.YTD.tweets.part0 = " if prefix else "") + text
    _import({"data/tweets.js": ytd.encode()}, fmt)
    _import({"outbox.json": text.encode()}, fmt)
    _import({"your_instagram_activity/threads/threads_and_replies.json": text.encode()}, fmt)
    _import({"your_facebook_activity/posts/your_posts_1.json": text.encode()}, fmt)
    notes = ("window.YTD.note_tweet.part0 = " if prefix else "") + text
    tweet = {
        "tweet": {"id_str": "1", "full_text": "A post that was cut short by the archive, as long ones are…"}
    }
    _import({"data/note-tweet.js": notes.encode(), "data/tweets.js": json.dumps([tweet]).encode()}, fmt)
    lines = value if isinstance(value, list) else [value]
    _import({"rows.jsonl": "\n".join(json.dumps(v) for v in lines).encode()}, fmt, target="rows.jsonl")


CSV_COLUMNS = ["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility", "post_id", "is_published",
               "title", "text", "content", "id", "", "permalink", "subreddit", "body", "date"]  # fmt: skip


@FUZZ
@given(
    header=st.lists(st.sampled_from(CSV_COLUMNS) | st.text(max_size=8), min_size=0, max_size=7),
    rows=st.lists(st.lists(st.text(max_size=60), max_size=8), max_size=6),
    name=st.sampled_from(["Shares.csv", "posts.csv", "comments.csv", "table.csv"]),
    fmt=st.sampled_from(["auto", "linkedin", "substack", "reddit", "csv"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_random_csv_shapes(header, rows, name, fmt, encoding):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    try:
        data = buf.getvalue().encode(encoding)
    except UnicodeEncodeError:  # lone surrogates cannot be written in any encoding
        return
    _import({name: data, "posts/1.html": b"<p>hello</p>"}, fmt)


@FUZZ
@given(
    members=st.dictionaries(st.sampled_from(FILE_NAMES[:-1]), st.binary(max_size=120), max_size=3),
    cut=st.integers(0, 400),
)
def test_random_zip_archives(members, cut):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = buf.getvalue()
    _import({"export.zip": data[:cut] if cut < len(data) else data}, "auto", target="export.zip")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_rejects_an_unrelated_file_clearly(tmp_path, fmt):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    # One line that names the folder and says what to pass instead.
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + r".*; pass "):
        import_posts(tmp_path, DataSpec(format=fmt))
