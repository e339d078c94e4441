"""Feedback in the chat: good/bad marks, two drafts and a pick, an edit, each appended to the run's
feedback.jsonl as it happens, read back as preference data; `localft chat RUN` drives it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from localft.chat.feedback import FeedbackError, FeedbackLog, feedback_counts, feedback_path, read_feedback
from localft.config import TrainSpec
from localft.data.pairs import Judged, Pair
from localft.run.folder import new_run


@pytest.fixture(scope="module")
def tiny_gguf(tiny_models, tmp_path_factory):
    from localft.export.gguf import convert_folder

    return convert_folder(tiny_models("llama"), tmp_path_factory.mktemp("fb") / "tiny-F16.gguf", "F16").path


def run_with_gguf(gguf):
    run = new_run(TrainSpec())
    run.gguf_dir.mkdir()
    shutil.copy(gguf, run.gguf_dir / f"{run.id}-F16.gguf")
    return run


def test_chat_command_records_marks_drafts_and_edits(tiny_gguf):
    import typer
    from typer.testing import CliRunner

    from localft.cli.chat import chat_command

    app = typer.Typer()
    app.command()(chat_command)
    run = run_with_gguf(tiny_gguf)
    lines = ["/good", "Hello", "/good", "/edit Hi, I'm Maya.", "/pick 1", "/two Write a post", "/pick 2",
             "/bad", "/quit"]  # fmt: skip
    result = CliRunner().invoke(
        app, [run.id, "--temperature", "1", "--max-tokens", "5", "--system", "Be Maya."],
        input="\n".join(lines) + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no reply to judge yet" in result.output  # /good before any reply
    assert "no two drafts to pick from" in result.output
    with pytest.raises(FeedbackError, match="this judgement: 'completion' is empty"):
        FeedbackLog(feedback_path(run.path)).rate([{"role": "user", "content": "q"}], " \n", True)
    assert "draft 1:" in result.output and "draft 2:" in result.output and "kept draft 2" in result.output
    records = [json.loads(line) for line in feedback_path(run.path).read_text().splitlines()]
    assert [r["kind"] for r in records] == ["rating", "edit", "pick", "rating"]
    rating, edit, pick, bad = records
    hello = [{"role": "system", "content": "Be Maya."}, {"role": "user", "content": "Hello"}]
    assert rating["prompt"] == hello and rating["label"] is True
    original = rating["completion"][0]["content"]
    assert edit["chosen"][0]["content"] == "Hi, I'm Maya." and edit["rejected"][0]["content"] == original
    # The chat went on from the edit: the pick's prompt holds it, and the picked draft is what /bad marks.
    assert pick["prompt"] == [*hello, {"role": "assistant", "content": "Hi, I'm Maya."},
                              {"role": "user", "content": "Write a post"}]  # fmt: skip
    assert pick["chosen"] != pick["rejected"]
    assert bad["label"] is False and bad["completion"] == pick["chosen"]
    counts = feedback_counts(run.path)
    assert (counts.pairs, counts.marks) == (2, 2)
    assert "(2 pairs, 2 marks)" in CliRunner().invoke(app, [run.id], input="/quit\n").output


def test_feedback_on_a_bare_gguf_says_where_it_would_go(tiny_gguf):
    import typer
    from typer.testing import CliRunner

    from localft.cli.chat import chat_command

    app = typer.Typer()
    app.command()(chat_command)
    result = CliRunner().invoke(app, [str(tiny_gguf), "--max-tokens", "3"], input="Hi\n/good\n/quit\n")
    assert result.exit_code == 0 and "feedback is kept with a run" in result.output


def test_a_judgement_is_on_disk_before_the_call_returns(tmp_path):
    """The process is killed right after recording: the line is there, whole; a torn last line
    (a write cut short) is skipped when reading, a torn line before others is an error."""
    path = tmp_path / "feedback.jsonl"
    code = (
        "import os, signal, sys\n"
        "from localft.chat.feedback import FeedbackLog\n"
        "FeedbackLog(sys.argv[1]).pick([{'role': 'user', 'content': 'q'}], 'mine', 'theirs')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], check=False)
    assert proc.returncode == -9
    assert read_feedback(path) == [Pair([{"role": "user", "content": "q"}], "mine", "theirs")]
    with open(path, "a") as f:
        f.write('{"kind": "rating", "prompt": "q", "compl')
    assert len(read_feedback(path)) == 1
    FeedbackLog(tmp_path / "other.jsonl").rate([{"role": "user", "content": "q"}], "ok", True)
    assert read_feedback(tmp_path / "other.jsonl") == [Judged([{"role": "user", "content": "q"}], "ok", True)]


def test_the_chat_screen_records_marks_drafts_and_edits(tiny_gguf):
    """The dashboard's Chat screen: a reply marked good, two drafts side by side and one kept, an
    edit; the same feedback.jsonl lines as `localft chat`, and the count on screen follows."""
    import asyncio

    from textual.widgets import Input, Static

    from localft.tui.app import LocalftApp
    from localft.tui.screens.chat import ChatScreen, Transcript
    from tests.tui_support import MACHINE, wait_until

    run = run_with_gguf(tiny_gguf)

    async def drive() -> str:
        app = LocalftApp(machine=MACHINE, attach=False)
        async with app.run_test(size=(110, 32)) as pilot:
            await app.push_screen(ChatScreen(run_path=run.path))
            screen = app.screen
            screen.query_one("#temperature", Input).value = "1"
            screen.query_one("#max_tokens", Input).value = "5"
            prompt = screen.query_one("#prompt", Input)
            prompt.value = "Hello"
            await pilot.press("enter")
            await wait_until(pilot, lambda: not screen.busy, 30)
            await pilot.press("ctrl+y")
            prompt.value = "Write a post"
            await pilot.press("ctrl+t")
            await wait_until(pilot, lambda: screen.query_one("#draft-picks").display, 30)
            assert screen.query_one("#base", Transcript).border_title == "draft 2"
            await pilot.click("#pick-2")
            await pilot.pause()
            assert not screen.query_one("#base", Transcript).display
            prompt.focus()  # the keys work while typing
            await pilot.press("ctrl+o")
            assert prompt.value == screen.feedback.session.history()[-1]["content"]  # the kept draft, to edit
            prompt.value = "A post, in my words."
            await pilot.press("enter")
            await pilot.pause()
            assert "A post, in my words." in str(
                screen.query_one("#tuned", Transcript).query_one(Static).content
            )
            return str(screen.query_one("#feedback-count", Static).content)

    count = asyncio.run(drive())
    records = [json.loads(line) for line in feedback_path(run.path).read_text().splitlines()]
    assert [r["kind"] for r in records] == ["rating", "pick", "edit"]
    assert records[2]["rejected"] == records[1]["chosen"]  # the kept draft, then edited
    assert records[1]["prompt"][-1] == {"role": "user", "content": "Write a post"}
    assert count.startswith("2 pairs, 1 mark")


def test_the_chat_screen_offers_a_grpo_round_and_says_in_one_line_why_not_yet(tiny_gguf):
    """Beside "Train on feedback" the Chat screen offers a reinforcement round; on a run without an
    adapter the refusal is the CLI's one line, and the button comes back for another try."""
    import asyncio

    from textual.widgets import Button

    from localft.tui.app import LocalftApp
    from localft.tui.screens.chat import ChatScreen
    from tests.tui_support import MACHINE, wait_until

    run = run_with_gguf(tiny_gguf)
    said = []

    async def drive() -> None:
        app = LocalftApp(machine=MACHINE, attach=False)
        app.notify = lambda message, **kw: said.append(message)
        async with app.run_test(size=(110, 32)) as pilot:
            await app.push_screen(ChatScreen(run_path=run.path))
            screen = app.screen
            button = screen.query_one("#train-grpo", Button)
            assert button.display and screen.query_one("#train-round", Button).display
            await pilot.click("#train-grpo")
            await wait_until(pilot, lambda: any("no adapter yet" in m for m in said), 30)
            await wait_until(pilot, lambda: not button.disabled)
            assert app.screen is screen

    asyncio.run(drive())
    assert said[0].startswith("starting a reinforcement round (grpo)")
    assert [m for m in said if "no adapter" in m] == [
        f"run {run.id} has no adapter yet; let it finish (or `localft runs resume {run.id}`)"
    ]
