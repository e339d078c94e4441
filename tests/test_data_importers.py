"""Each sample export imports with the exact counts written here, from a folder or straight from an archive."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest

from localft.config import DataSpec
from localft.data.load import import_posts
from localft.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
DEMO = ROOT / "examples" / "linkedin-export.zip"

# source, platform, read, kept, dropped per reason, changed per kind
EXPECTED = [
    (DEMO, "linkedin", 159, 150,
     {"reshares without commentary": 5, "too short (< 40 chars)": 1, "exact duplicates": 2, "near-duplicates": 1},
     {"emails replaced": 1, "phones replaced": 1, "links replaced": 1}),
    (EXPORTS / "linkedin-small", "linkedin", 6, 3,
     {"reshares without commentary": 2, "too short (< 40 chars)": 1}, {"emails replaced": 1, "phones replaced": 1}),
    (EXPORTS / "x-archive", "x", 14, 6,
     {"retweets": 2, "replies to others": 2, "too short (< 40 chars)": 1, "exact duplicates": 1},
     {"thread parts joined": 2, "links replaced": 1}),
    (EXPORTS / "mastodon-archive", "mastodon", 11, 5,
     {"private posts": 1, "direct posts": 1, "boosts": 2, "replies to others": 1},
     {"thread parts joined": 1, "links replaced": 1}),
    (EXPORTS / "substack-export", "substack", 4, 3, {"drafts": 1}, {}),
    (EXPORTS / "text-notes", "text", 5, 4, {"too short (< 40 chars)": 1}, {}),
    (EXPORTS / "prepared" / "chat.jsonl", "chat", 4, 3, {"exact duplicates": 1}, {"emails replaced": 1}),
    (EXPORTS / "prepared" / "completions.jsonl", "completions", 3, 3, {}, {}),
    (EXPORTS / "prepared" / "posts.csv", "csv", 4, 3, {"too short (< 40 chars)": 1}, {}),
    (EXPORTS / "prepared" / "posts.jsonl", "jsonl", 3, 3, {}, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "platform", "read", "kept", "dropped", "changed"),
    EXPECTED,
    ids=lambda x: getattr(x, "name", None),
)
def test_sample_export_counts(source, platform, read, kept, dropped, changed):
    result = import_posts(source, DataSpec())
    assert result.platform == platform
    assert (result.tally.read, len(result.posts)) == (read, kept)
    assert result.tally.dropped == dropped
    assert result.tally.changed == changed
    assert read - sum(dropped.values()) - changed.get("thread parts joined", 0) == kept


def test_linkedin_csv_quirks_multiline_doubled_quotes_bom_and_author():
    posts = import_posts(EXPORTS / "linkedin-small", DataSpec()).posts
    first = posts[0]
    assert first.text.startswith('We call it the "two-day rule":\nno pull request waits')
    assert "\r" not in first.text and "\n\nIt sounds small." in first.text
    assert (
        posts[1].text
        == "Rain, 6 degrees, headwind.\nStill the best part of my day. 🚲🌧️\n\nWhere do you do your best thinking?"
    )
    assert "[email]" in posts[2].text and "[phone]" in posts[2].text and "€85,000–€100,000" in posts[2].text
    assert first.date == "2026-09-14T07:41:09" and first.meta["visibility"] == "MEMBER_NETWORK"
    demo = import_posts(DEMO, DataSpec())  # Shares.csv with a BOM, Profile.csv with the name
    assert demo.author == "Maya Lindqvist"
    assert all(not p.text.startswith("\ufeff") for p in demo.posts)


def test_x_unescapes_expands_links_and_joins_threads():
    spec = DataSpec(urls="keep")
    texts = {p.source_id: p for p in import_posts(EXPORTS / "x-archive", spec).posts}
    assert (
        texts["1790000000000000001"].text == "Small PRs get reviews. Big PRs get a thumbs up & a prayer. 🙏"
    )
    assert texts["1790000000000000002"].text.endswith("we use: https://mayalindqvist.dev/blog/pager-noise")
    assert (
        texts["1790000000000000003"].text
        == "Rule of thumb: written decision > meeting > hallway chat. Fight me."
    )
    assert (
        texts["1790000000000000010"].text
        == "Friday ride crew, 6 degrees and smiling anyway. Best meeting of the week."
    )
    thread = texts["1790000000000000006"]
    assert thread.kind == "thread"
    assert thread.text.split("\n\n") == [
        "Five things I learned running on-call for a year. A thread 🧵",
        "1/ Every alert must be actionable. If the answer is “wait and see”, it is not an alert.",
        "2/ Pay people for the pager, and give the day after a night page off. No debate.",
    ]
    assert thread.date == "2024-05-17T06:45:00+00:00"


def test_x_options_keep_replies_and_split_threads():
    spec = DataSpec(include_replies=True, join_threads=False, min_chars=0, dedup=False)
    result = import_posts(EXPORTS / "x-archive", spec)
    assert result.tally.dropped == {"retweets": 2}
    texts = [p.text for p in result.posts]
    assert len(texts) == 12
    assert "Agreed, the setup script is the real onboarding doc. Ours takes forty minutes now." in texts


def test_mastodon_visibility_content_warning_and_html():
    result = import_posts(EXPORTS / "mastodon-archive", DataSpec(urls="keep"))
    by_text = {p.text.split("\n")[0]: p for p in result.posts}
    doc = by_text["Documentation is a gift to the person you will be in six months."]
    assert doc.text == (
        "Documentation is a gift to the person you will be in six months.\n\n"
        "We test the quickstart on every merge.\nIf a step breaks, the build breaks.\n\n#DevEx #Documentation"
    )
    burnout = next(p for p in result.posts if p.text.startswith("I burned out"))
    assert burnout.meta["content_warning"] == "burnout, mental health"
    link = next(p for p in result.posts if p.text.startswith("Wednesday"))
    assert link.text.endswith("How we got there: https://mayalindqvist.dev/blog/meeting-free-wednesdays")
    assert {p.meta["visibility"] for p in result.posts} == {"public", "unlisted"}
    private = import_posts(EXPORTS / "mastodon-archive", DataSpec(include_private=True))
    assert len(private.posts) == 7 and private.tally.dropped == {"boosts": 2, "replies to others": 1}


def test_substack_titles_and_text_front_matter():
    posts = import_posts(EXPORTS / "substack-export", DataSpec()).posts
    assert [p.title for p in posts] == ["The two-day rule", "Calm on-call", "Learning Rust, slowly"]
    assert "- Small pull requests\n- Reviews within one working day" in posts[0].text
    assert "a patient teacher & a strict one.\nFriday mornings" in posts[2].text
    notes = import_posts(EXPORTS / "text-notes", DataSpec()).posts
    ride = next(p for p in notes if p.title)
    assert (ride.title, ride.date) == ("Thinking on the bike", "2025-05-02")
    assert ride.text.startswith("My commute is 14 km by bike.")


def test_prepared_rows_keep_their_shape():
    chat = import_posts(EXPORTS / "prepared" / "chat.jsonl", DataSpec()).posts
    assert [len(p.messages) for p in chat] == [3, 2, 4]
    assert (
        chat[1].messages[1]["content"]
        == "Every alert must be actionable. Mail me at [email] for our checklist."
    )
    text = import_posts(EXPORTS / "prepared" / "text.jsonl", DataSpec(format="text")).posts
    assert [p.kind for p in text] == ["text"] * 3  # --format text on JSONL: rows trained as they are
    assert import_posts(EXPORTS / "prepared" / "text.jsonl", DataSpec()).platform == "jsonl"


def _zip_folder(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return out


@pytest.mark.parametrize("name", ["x-archive", "mastodon-archive", "substack-export", "linkedin-small"])
def test_archives_read_like_the_folder(tmp_path, name):
    folder = EXPORTS / name
    expected = [(p.source_id, p.text) for p in import_posts(folder, DataSpec()).posts]
    zipped = _zip_folder(folder, tmp_path / f"{name}.zip", prefix="export-2026/")
    tarred = tmp_path / f"{name}.tar.gz"
    with tarfile.open(tarred, "w:gz") as tf:
        tf.add(folder, arcname=name)
    for archive in (zipped, tarred):
        got = import_posts(archive, DataSpec())
        assert [(p.source_id, p.text) for p in got.posts] == expected


def test_utf16_file_reads_correctly():
    posts = import_posts(EXPORTS / "bad" / "utf16", DataSpec()).posts
    assert (
        posts[0].text == "Grüße aus Göteborg! Ett inlägg på svenska och tyska, med emoji 🙂.\nZweite Zeile."
    )


def test_hugging_face_dataset_folder_and_hub_id(tmp_path):
    import datasets

    folder = tmp_path / "my-posts" / "data"
    folder.mkdir(parents=True)
    texts = [
        "Small pull requests get real feedback; big ones get a shrug.",
        "Every alert must be actionable, or it is noise that wakes people up.",
        "Writing is the real remote work skill, more than any video tool.",
        "tiny",
    ]
    rows = [{"content": t, "id": f"p{i}"} for i, t in enumerate(texts)]
    datasets.Dataset.from_list(rows).to_parquet(str(folder / "train-00000.parquet"))
    result = import_posts(tmp_path / "my-posts", DataSpec())  # auto-detected from the parquet file
    assert result.platform == "hf" and result.tally.read == 4
    assert [p.source_id for p in result.posts] == ["p0", "p1", "p2"]
    chat = tmp_path / "chat.parquet"
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, nice to meet you."}]
    datasets.Dataset.from_list([{"messages": msgs}]).to_parquet(str(chat))
    assert import_posts(chat, DataSpec(format="hf")).posts[0].messages == msgs
    with pytest.raises(DataError, match="dataset nobody/no-such-dataset cannot be loaded"):
        import_posts(Path("nobody/no-such-dataset"), DataSpec(format="hf"))
