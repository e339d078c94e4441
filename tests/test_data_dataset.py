"""build_dataset and `localft data import|inspect` on the sample exports: files, splits, report, tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from localft.cli.data import app
from localft.config import DataSpec, TrainSpec
from localft.data.dataset import build_dataset
from localft.data.dedup import duplicate_clusters
from localft.data.report import DataReport, format_report
from localft.events import Stage

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
DEMO = ROOT / "examples" / "linkedin-export.zip"


def _rows(folder: Path) -> dict[str, list[dict]]:
    return {
        s: [json.loads(line) for line in (folder / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
        for s in ("train", "valid", "test")
    }


def _reply(row: dict) -> str:
    return row["messages"][-1]["content"]


def test_demo_export_becomes_chat_splits(tmp_path):
    events = []
    report = build_dataset(DEMO, DataSpec(), tmp_path / "data", emit=events.append)
    rows = _rows(tmp_path / "data")
    assert report.counts == {"read": 159, "kept": 150, "train": 120, "valid": 15, "test": 15}
    assert {s: len(r) for s, r in rows.items()} == {"train": 120, "valid": 15, "test": 15}
    system = "You are Maya Lindqvist. Write each LinkedIn post in your own voice."
    for row in rows["train"] + rows["valid"] + rows["test"]:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert row["messages"][0]["content"] == system
        assert row["messages"][1]["content"].startswith("Write a LinkedIn post about ")
        assert row["meta"]["date"] and row["meta"]["id"]
    replies = [{_reply(r) for r in rows[s]} for s in ("train", "valid", "test")]
    assert not (replies[0] & replies[1] or replies[0] & replies[2] or replies[1] & replies[2])
    saved = json.loads((tmp_path / "data" / "report.json").read_text(encoding="utf-8"))
    assert saved == report.to_dict() and DataReport.from_dict(saved).counts == report.counts
    assert all(isinstance(e, Stage) and e.name == "import" for e in events)
    assert (events[-1].done, events[-1].total) == (events[-1].total, 4)


def test_same_input_same_files_and_seed_changes_split(tmp_path):
    build_dataset(DEMO, DataSpec(), tmp_path / "a")
    build_dataset(DEMO, DataSpec(), tmp_path / "b")
    build_dataset(DEMO, DataSpec(seed=1), tmp_path / "c")
    for s in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{s}.jsonl").read_bytes() == (tmp_path / "b" / f"{s}.jsonl").read_bytes()
    assert (tmp_path / "a" / "test.jsonl").read_bytes() != (tmp_path / "c" / "test.jsonl").read_bytes()


def test_near_duplicates_share_a_split_when_kept(tmp_path):
    report = build_dataset(DEMO, DataSpec(dedup=False), tmp_path)
    assert report.kept == 153 and "exact duplicates" not in report.dropped
    rows = _rows(tmp_path)
    flat = [(s, _reply(r)) for s, rs in rows.items() for r in rs]
    groups, why = duplicate_clusters([t for _, t in flat], 0.85)
    assert why.count("exact") == 2 and why.count("near") == 1
    for g in set(groups):
        assert len({flat[i][0] for i in range(len(flat)) if groups[i] == g}) == 1


def test_prepared_rows_land_as_chat_and_text_rows(tmp_path):
    build_dataset(
        EXPORTS / "prepared" / "chat.jsonl", DataSpec(valid_fraction=0, test_fraction=0), tmp_path / "chat"
    )
    chat = _rows(tmp_path / "chat")["train"]
    assert sorted(len(r["messages"]) for r in chat) == [2, 3, 4]
    build_dataset(EXPORTS / "prepared" / "text.jsonl", DataSpec(format="text"), tmp_path / "text")
    rows = [r for rs in _rows(tmp_path / "text").values() for r in rs]
    assert len(rows) == 3 and all(set(r) == {"text", "meta"} for r in rows)


@pytest.mark.slow
def test_token_statistics_use_the_chat_template(tmp_path):
    from transformers import AutoTokenizer

    from localft.plan.catalog import embedded_model_dir

    tok_dir = embedded_model_dir()
    report = build_dataset(
        EXPORTS / "linkedin-small", DataSpec(), tmp_path, tokenizer_dir=tok_dir, max_seq_len=64
    )
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    rows = [r for rs in _rows(tmp_path).values() for r in rs]
    lengths = sorted(
        len(tokenizer.apply_chat_template(r["messages"], tokenize=True)["input_ids"]) for r in rows
    )
    t = report.tokens
    assert (t["rows"], t["total"], t["max"]) == (3, sum(lengths), lengths[-1])
    assert t["over_max_seq_len"] == sum(n > 64 for n in lengths) and t["max_seq_len"] == 64
    assert 0 < t["trained"] < t["total"]
    assert report.lengths["unit"] == "tokens"
    assert "over max_seq_len 64" in format_report(report)


def test_cli_import_then_inspect(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["import", str(DEMO), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "read 159 → kept 150 → train 120 · valid 15 · test 15" in result.output
    assert "reshares without commentary 5" in result.output
    assert (out / "train.jsonl").is_file() and (out / "report.json").is_file()
    shown = runner.invoke(app, ["inspect", str(out), "--samples", "2"])
    assert shown.exit_code == 0
    assert shown.output.count("example  Write a LinkedIn post about") == 2
    assert "length in chars:" in shown.output
    as_json = runner.invoke(app, ["inspect", str(out), "--json"])
    assert json.loads(as_json.output)["splits"] == {"train": 120, "valid": 15, "test": 15}
    dry = runner.invoke(app, ["inspect", str(EXPORTS / "x-archive")])
    assert dry.exit_code == 0 and "read 14 → kept 6" in dry.output


def test_cli_options_reach_the_spec_and_inspect_finds_a_run(tmp_path):
    from localft.run.folder import new_run

    run = new_run(TrainSpec())
    args = ["import", str(EXPORTS / "x-archive"), "-o", str(run.data_dir), "--include-replies", "--urls", "keep",
            "--author", "M. L.", "--min-chars", "0"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((run.data_dir / "report.json").read_text(encoding="utf-8"))
    assert (
        report["kept"] == 9
        and report["system_prompt"] == "You are M. L. Write each post for X in your own voice."
    )
    shown = CliRunner().invoke(app, ["inspect", run.id])
    assert shown.exit_code == 0 and "read 14 → kept 9" in shown.output


def test_a_duplicate_post_does_not_crash_the_split(tmp_path):
    """Regression: cluster ids index the posts before dedup, so dropping the repeat of the first
    post used to send split_groups past the end of the kept list (IndexError)."""
    posts = [
        "The first post is about shipping small changes every single day, on purpose.",
        "A second post: code review is a conversation between colleagues, not a gate.",
        "Third: write the test that fails first, then make it pass, then tidy the code.",
    ]
    lines = [posts[0], *posts]  # the first post twice: every later cluster id shifts past the end
    src = tmp_path / "posts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    report = build_dataset(src, DataSpec(valid_fraction=0.3, test_fraction=0.3), tmp_path / "data")
    rows = _rows(tmp_path / "data")
    assert report.dropped == {"exact duplicates": 1}
    assert sorted(_reply(r) for s in rows.values() for r in s) == sorted(posts)
