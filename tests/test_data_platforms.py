"""Threads, Facebook, Bluesky, Reddit, LinkedIn articles and X long posts: each sample export imports with
the counts written here, straight from the folder or an archive, with each platform's quirks handled."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from localft.config import DataSpec
from localft.data.dataset import build_dataset
from localft.data.importers import detect_format
from localft.data.importers.meta_json import repair_mojibake
from localft.data.load import import_posts
from localft.data.source import ExportSource
from localft.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
SHORT = "too short (< 40 chars)"

# source, platform, read, kept, dropped per reason, changed per kind
EXPECTED = [
    ("threads-export", "threads", 10, 5,
     {"replies": 2, "media without text": 1, SHORT: 1, "exact duplicates": 1}, {"emails replaced": 1}),
    ("facebook-export", "facebook", 9, 5,
     {"shares without text": 2, "posts on others' timelines": 1, "near-duplicates": 1}, {"phones replaced": 1}),
    ("bluesky/repo.car", "bluesky", 11, 5,
     {"reposts": 2, "replies to others": 1, "media without text": 1, SHORT: 1},
     {"thread parts joined": 1, "links replaced": 1}),
    ("reddit-export", "reddit", 9, 4, {"comments": 4, SHORT: 1}, {}),
    ("linkedin-complete", "linkedin", 7, 5, {"article drafts": 1, "reshares without commentary": 1}, {}),
    ("x-long-posts", "x", 4, 3, {"retweets": 1}, {"long posts restored": 2, "links replaced": 1}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "platform", "read", "kept", "dropped", "changed"), EXPECTED, ids=lambda x: x
)
def test_sample_export_counts(name, platform, read, kept, dropped, changed):
    result = import_posts(EXPORTS / name, DataSpec())
    assert result.platform == platform
    assert (result.tally.read, len(result.posts)) == (read, kept)
    assert result.tally.dropped == dropped
    assert result.tally.changed == changed
    assert read == kept + sum(dropped.values()) + changed.get("thread parts joined", 0)
    if platform != "reddit":  # Reddit's export has no display name
        assert result.author == "Maya Lindqvist"


@pytest.mark.parametrize("name", ["threads-export", "facebook-export", "reddit-export", "linkedin-complete"])
def test_archives_read_like_the_folder(tmp_path, name):
    folder = EXPORTS / name
    expected = [(p.source_id, p.text) for p in import_posts(folder, DataSpec()).posts]
    zipped = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    tarred = tmp_path / f"{name}.tar.gz"
    with tarfile.open(tarred, "w:gz") as tf:
        tf.add(folder, arcname=f"export-{name}")
    for archive in (zipped, tarred):
        assert [(p.source_id, p.text) for p in import_posts(archive, DataSpec()).posts] == expected


def test_meta_escapes_are_repaired_exactly():
    raw = (EXPORTS / "threads-export/your_instagram_activity/threads/threads_and_replies.json").read_text(
        "ascii"
    )
    assert "G\\u00c3\\u00b6teborg" in raw  # the file holds Meta's byte-per-escape text
    texts = [p.text for p in import_posts(EXPORTS / "threads-export", DataSpec()).posts]
    assert texts[0] == (
        "Fika at 10:00 is not a break from the work in Göteborg. It is where half our design decisions happen ☕🇸🇪"
    )
    fb = [p.text for p in import_posts(EXPORTS / "facebook-export", DataSpec()).posts]
    assert "Midsummer in Dalarna: no laptops, one maypole, far too much herring 🌼" in fb  # a photo's caption
    # text that is already real Unicode, or genuine Latin-1, is left as it is
    assert repair_mojibake({"k": ["Göteborg ☕", "Ã"]}) == {"k": ["Göteborg ☕", "Ã"]}


def test_threads_and_facebook_options():
    threads = import_posts(EXPORTS / "threads-export", DataSpec(include_replies=True, min_chars=0))
    assert threads.tally.dropped == {"media without text": 1, "exact duplicates": 1}
    assert "agreed — the pager rota should be boring, that is the whole point of it" in [
        p.text for p in threads.posts
    ]
    fb = import_posts(EXPORTS / "facebook-export", DataSpec(include_replies=True))
    assert any(p.text.startswith("Happy birthday Sam!") for p in fb.posts)


def test_bluesky_links_threads_and_reading_errors(tmp_path):
    posts = import_posts(EXPORTS / "bluesky" / "repo.car", DataSpec(urls="keep")).posts
    assert posts[0].text.endswith("the alert checklist we use: https://mayalindqvist.dev/blog/pager-noise")
    thread = next(p for p in posts if p.kind == "thread")
    assert thread.text.split("\n\n") == [
        "Five things I learned running on-call for a year. A thread 🧵",
        "1/ Every alert must be actionable. If the answer is “wait and see”, it is not an alert.",
    ]
    assert thread.source_id.startswith("at://did:plc:w4xbfzo7kqfes5zb7r6qv3rw/app.bsky.feed.post/")
    data = (EXPORTS / "bluesky" / "repo.car").read_bytes()
    (tmp_path / "cut.car").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.car is not a readable CAR file .*Export my data") as err:
        import_posts(tmp_path / "cut.car", DataSpec())
    assert "\n" not in str(err.value)


def test_reddit_posts_comments_and_subreddits():
    result = import_posts(EXPORTS / "reddit-export", DataSpec(include_replies=True))
    assert (result.tally.read, len(result.posts)) == (9, 7)
    assert result.tally.dropped == {"deleted or empty": 1, SHORT: 1}
    first = result.posts[0]
    assert first.text.startswith(
        "How we got code review under one working day\n\nTwo years ago our median PR"
    )
    assert "* PRs under 300 lines" in first.text and first.date == "2025-08-02T07:41:09+00:00"
    removed = next(p for p in result.posts if p.source_id == "1fb00kd")
    assert (
        removed.text == "Anyone else paying people for their on-call weeks?"
    )  # "[removed]" body: the title stays
    assert [p.kind for p in result.posts].count("comment") == 3


def test_linkedin_articles_and_x_long_posts_become_requests(tmp_path):
    report = build_dataset(
        EXPORTS / "linkedin-complete", DataSpec(valid_fraction=0, test_fraction=0), tmp_path / "li"
    )
    rows = [json.loads(x) for x in (tmp_path / "li" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    requests = {r["messages"][1]["content"] for r in rows}
    assert "Write a LinkedIn article titled “The two-day rule”." in requests
    assert sum(r.startswith("Write a LinkedIn post about ") for r in requests) == 2
    article = next(r for r in rows if "titled “The two-day rule”" in r["messages"][1]["content"])
    assert article["messages"][2]["content"].startswith(
        "Code review is not a gate. It is a conversation.\n\n"
    )
    assert "- Small pull requests\n- Reviews within one working day" in article["messages"][2]["content"]
    assert report.kept == 5
    posts = import_posts(EXPORTS / "x-long-posts", DataSpec(urls="keep")).posts
    first = posts[0].text
    assert first.startswith("Things I got wrong in my first year as a manager") and "…" not in first
    assert first.endswith("What would you add? Full notes: https://mayalindqvist.dev/notes/first-year")
    assert posts[1].text.endswith("so the real one feels familiar. 🧯")
    assert not any(p.text.startswith("A long post I deleted later") for p in posts)  # its tweet is gone


def test_each_export_is_detected_and_html_exports_are_refused(tmp_path):
    for name, platform in [("threads-export", "threads"), ("facebook-export", "facebook"),
                           ("bluesky/repo.car", "bluesky"), ("reddit-export", "reddit"),
                           ("reddit-export/posts.csv", "reddit"), ("substack-export", "substack")]:  # fmt: skip
        with ExportSource(EXPORTS / name) as src:
            assert detect_format(src) == platform, name
    html = tmp_path / "instagram-maya-2026" / "your_instagram_activity" / "threads"
    html.mkdir(parents=True)
    (html / "threads_and_replies.html").write_text("<html><body>posts</body></html>", encoding="utf-8")
    with pytest.raises(
        DataError, match="HTML export; request the Threads export again with the format set to JSON"
    ):
        import_posts(tmp_path / "instagram-maya-2026", DataSpec())
