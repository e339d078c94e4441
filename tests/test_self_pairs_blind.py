"""Pairs without a person (`--pairs self`: real post = chosen, the run's GGUF draft = rejected)
and the blind test "Which one is you?" (`localft eval --blind`): real llama.cpp drafts from a tiny
model's GGUF."""

from __future__ import annotations

import json
import shutil

import pytest

from localft.config import TrainSpec
from localft.data.pairs import read_preferences
from localft.run.folder import new_run

SYSTEM = {"role": "system", "content": "You are Maya."}
POSTS = ["Ship small things, often.", "Tea first, then code.", "Reviews are conversations.",
         "Naming is design.", "Delete more code."]  # fmt: skip


def _row(i: int) -> dict:
    return {"messages": [SYSTEM, {"role": "user", "content": f"Write post {i}."},
                         {"role": "assistant", "content": POSTS[i]}]}  # fmt: skip


@pytest.fixture
def style_run(tiny_models, tmp_path_factory):
    """A finished style-clone run: splits, a merged folder (its tokenizer) and a GGUF."""
    from localft.export.gguf import convert_folder

    run = new_run(TrainSpec())
    run.data_dir.mkdir()
    for split, ids in (("train", [0, 1, 2]), ("valid", [3]), ("test", [3, 4])):
        run.split_path(split).write_text("".join(json.dumps(_row(i)) + "\n" for i in ids))
    shutil.copytree(tiny_models("llama"), run.merged_dir)
    run.gguf_dir.mkdir()
    convert_folder(run.merged_dir, run.gguf_dir / f"{run.id}-F16.gguf", "F16")
    return run


def test_self_pairs_take_the_real_post_as_chosen_and_the_draft_as_rejected(style_run):
    from localft.data.self_pairs import build_self_pairs, pairs_path

    out = new_run(TrainSpec(), name="dpo-round")
    seen = []
    counts = build_self_pairs(style_run, out, max_tokens=6, progress=lambda *a: seen.append(a))
    assert counts == {"train": 3, "valid": 1}
    assert ("train", 3, 3) in seen and ("valid", 1, 1) in seen  # progress ends at the total
    pairs = read_preferences(pairs_path(out, "train"))
    assert [p.chosen for p in pairs] == POSTS[:3]
    assert [p.prompt for p in pairs] == [_row(i)["messages"][:2] for i in range(3)]
    assert all(p.rejected.strip() and p.rejected != p.chosen for p in pairs)


def test_blind_test_records_picks_as_pairs_and_the_share_in_the_report(style_run):
    import typer
    from typer.testing import CliRunner

    from localft.cli.eval import eval_command
    from localft.eval.report import write_report

    report = {"run": style_run.id, "model": "embedded", "quant": "F16", "test_rows": 2, "generations": 0,
              "max_tokens": 6, "metrics": {}, "samples": []}  # fmt: skip
    write_report(report, style_run.eval_dir)
    app = typer.Typer()
    app.command()(eval_command)
    result = CliRunner().invoke(
        app, [style_run.id, "--blind", "--samples", "2", "--max-tokens", "6"], input="x\n1\n1\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Which one is you?") == 3  # 'x' is asked again
    records = [json.loads(x) for x in (style_run.path / "feedback.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["blind", "blind"]
    taken = [r["chosen"][0]["content"] not in POSTS for r in records]  # picked the draft for real
    assert [r["draft_taken_for_real"] for r in records] == taken
    assert {r["chosen"][0]["content"] for r in records} | {r["rejected"][0]["content"] for r in records} >= {
        POSTS[3],
        POSTS[4],
    }
    share = sum(taken) / 2
    assert f"drafts taken for real: {sum(taken)} of 2 ({share:.0%})" in result.output
    saved = json.loads((style_run.eval_dir / "report.json").read_text())
    assert saved["blind"] == {"answers": 2, "drafts_taken_for_real": sum(taken), "share": share}
    assert (
        f"taken for the real post in {sum(taken)} of 2 answers"
        in (style_run.eval_dir / "report.md").read_text()
    )


def test_the_dashboards_blind_test(style_run):
    """From the Chat screen, ctrl+w opens "Which one is you?": the model drafts, the person picks
    with 1/2; the answers land in feedback.jsonl and the share is shown."""
    import asyncio

    from textual.widgets import Static

    from localft.tui.app import LocalftApp
    from localft.tui.screens.blind import BlindScreen
    from localft.tui.screens.chat import ChatScreen
    from tests.tui_support import MACHINE, wait_until

    async def drive() -> str:
        app = LocalftApp(machine=MACHINE, attach=False)
        async with app.run_test(size=(110, 32)) as pilot:
            await app.push_screen(ChatScreen(run_path=style_run.path))
            await pilot.press("ctrl+l")
            screen = app.screen
            assert isinstance(screen, BlindScreen)
            screen.max_tokens = 6
            await wait_until(pilot, lambda: len(screen.questions) == 2, 60)
            assert screen.query_one("#option-1 Static", Static).content in screen.questions[0].options
            await pilot.press("2")
            await pilot.press("s")
            await pilot.pause()
            return str(screen.query_one("#blind-status", Static).content)

    status = asyncio.run(drive())
    records = [json.loads(x) for x in (style_run.path / "feedback.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["kind"] == "blind"
    assert status.startswith("Done: the draft was taken for the real post in") and "of 1 answers" in status
