"""Hostile exports: bombs stop at the limit with little memory, JSON past Python's limits and
chat rows out of order are one-line errors or counted drops, traversal and links read nothing
outside the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localft.config import DataSpec
from localft.data import source as source_module
from localft.data.dataset import build_dataset
from localft.data.load import import_posts
from localft.data.source import ExportSource
from localft.errors import DataError
from tests.hostile import archives
from tests.hostile.process import LOCALFT, run_measured

# The process imports localft and reads the archive; 2.1 GB and 1.3 GB before the bound.
PEAK_LIMIT = 200 << 20


def _one_line_error(outcome, *words: str) -> None:
    assert outcome.code == 2, outcome.describe()
    assert outcome.stderr.startswith("error: ") and outcome.stderr.count("\n") == 1, outcome.describe()
    assert "Traceback" not in outcome.stderr + outcome.stdout
    for word in words:
        assert word in outcome.stderr, outcome.describe()


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (archives.zip_bomb_lying_header, ["linkedin-bomb.zip:Shares.csv cannot be read", "CRC"]),
        (archives.zip_declared_huge, ["linkedin-huge.zip:Shares.csv is larger than", "256 MiB a file"]),
        (archives.tar_huge_member, ["linkedin-huge.tar.gz:Shares.csv is larger than", "256 MiB a file"]),
    ],
    ids=["zip-lying-header-1.5GiB", "zip-declared-1GiB", "tar-member-600MiB"],
)
def test_archive_bombs_stop_at_the_limit_with_little_memory(tmp_path, build, words):
    bomb = build(tmp_path)
    assert bomb.stat().st_size < 2 << 20  # a small download...
    outcome = run_measured(LOCALFT + ["data", "import", str(bomb), "-o", str(tmp_path / "out")], timeout=60)
    _one_line_error(outcome, *words)
    assert outcome.peak_rss < PEAK_LIMIT, outcome.describe()  # ...that no longer fills memory
    assert not (tmp_path / "out").exists()


def test_reading_is_bounded_by_bytes_actually_read(tmp_path, monkeypatch):
    """No size to trust (/dev/zero), and the total over several files: both stop at the limit."""
    monkeypatch.setattr(source_module, "MAX_FILE_MIB", 1)
    monkeypatch.setattr(source_module, "MAX_TOTAL_MIB", 2)
    endless = archives.endless_file(tmp_path)
    with (
        ExportSource(endless) as src,
        pytest.raises(DataError, match=r"posts.jsonl is larger than .*1 MiB a file"),
    ):
        src.read_bytes("posts.jsonl")

    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.md").write_bytes(b"word " * 180_000)  # 0.86 MiB each
    with ExportSource(folder) as src:
        src.read_bytes("0.md")
        src.read_bytes("0.md")  # reading a file again does not count twice
        src.read_bytes("1.md")
        with pytest.raises(DataError, match=r"2.md is larger than .*2 MiB in all"):
            src.read_bytes("2.md")


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (archives.deep_json, ["deep.jsonl line 1 holds JSON nested too deeply"]),
        (archives.deep_tweets, ["x-deep holds JSON nested too deeply"]),  # through the X importer
        (archives.big_number_json, ["big-number.jsonl line 1 holds a number with thousands of digits"]),
        (archives.non_object_jsonl, ["rows.jsonl line 2: expected a JSON object, found list"]),
        (archives.invalid_utf8, ["Shares.csv line 2: not UTF-8 text (byte 0xe9)"]),
        (archives.truncated_zip, ["truncated.zip is not a readable zip archive"]),
        (archives.truncated_tar, ["truncated.tar.gz is not a readable tar archive"]),
        (archives.corrupt_archive, ["corrupt.zip is not a readable zip archive"]),
        (archives.links_tar, ["links.tar.gz is empty (no files)"]),  # links are never followed
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_broken_and_malicious_files_are_one_line_errors(tmp_path, build, words):
    with pytest.raises(DataError) as info:
        import_posts(build(tmp_path), DataSpec())
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_member_names_that_climb_out_are_read_as_names_only(tmp_path):
    escape = Path("/tmp/localft-escape")
    result = import_posts(archives.traversal_zip(tmp_path), DataSpec())
    assert len(result.posts) == 3 and result.platform == "linkedin"
    assert not escape.exists() and not Path("/etc/localft-escape.txt").exists()


def test_chat_rows_out_of_order_are_dropped_and_counted(tmp_path):
    report = build_dataset(archives.roles_mixed(tmp_path), DataSpec(), tmp_path / "out")
    assert report.kept == 6 and report.read == 11
    assert report.dropped == {
        "chat rows starting with the assistant": 1,
        "chat rows with two user turns in a row": 1,
        "chat rows with two assistant turns in a row": 1,
        "chat rows not ending with an assistant reply": 1,
        "chat rows with a system turn after the start": 1,
    }
    splits = [(tmp_path / "out" / f"{s}.jsonl").read_text() for s in ("train", "valid", "test")]
    rows = [json.loads(line) for text in splits for line in text.splitlines()]
    for row in rows:  # what is trained on alternates user/assistant after the system prompt
        roles = [m["role"] for m in row["messages"] if m["role"] != "system"]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))

    with pytest.raises(DataError, match=r"all 5 entries were skipped .* must alternate user and assistant"):
        import_posts(archives.roles_out_of_order(tmp_path), DataSpec())


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", '{"splits": {"train": 1}}', "[" * 100_000 + "]" * 100_000],
    ids=["a-list", "fields-missing", "nested-too-deep"],
)
def test_inspect_a_damaged_report_is_one_line(tmp_path, content):
    (tmp_path / "report.json").write_text(content)
    outcome = run_measured(LOCALFT + ["data", "inspect", str(tmp_path)], timeout=60)
    _one_line_error(outcome, "report.json")
