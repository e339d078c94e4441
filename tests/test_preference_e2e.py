"""The feedback loop end to end on a tiny model: from a finished, exported style-clone run to a
preference-tuned GGUF without leaving the dashboard (rate in chat -> train round -> export ->
chat; a grpo round from the Chat screen, its reward on the Training screen), and by one command
(`localft train --method dpo --from RUN --pairs self`, then export)."""

from __future__ import annotations

import json

import pytest

from localft.config import ExportSpec
from localft.run.folder import RunDir
from localft.run.runner import stop_worker, wait_worker
from tests.training import make_run, train_run

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ROUND = ["--steps", "4", "--batch-size", "2", "--set", "eval_every=2", "--set", "save_every=2"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, tiny_models):
    """A finished SFT run of the tiny model, exported to a Q8_0 GGUF (shared by both tests: the
    dashboard's round reads its feedback, the command's its own drafts)."""
    from localft.run.export import export_run

    spec, run = make_run(tmp_path_factory.mktemp("sft"), tiny_models("llama"), steps=2, n_train=8, n_valid=4)
    train_run(spec, run)
    export_run(run, ExportSpec(quants=["Q8_0"], verify=False, ollama=False))
    return run


async def test_rate_train_export_and_chat_without_leaving_the_dashboard(exported_run):
    from localft.tui.app import LocalftApp
    from localft.tui.screens.chat import ChatScreen
    from localft.tui.screens.export import ExportScreen
    from localft.tui.screens.training import TrainingScreen
    from tests.tui_support import MACHINE, wait_until

    app = LocalftApp(machine=MACHINE, attach=False)
    new = None
    try:
        async with app.run_test(size=(110, 32)) as pilot:
            app.open_chat(run_path=exported_run.path)
            await pilot.pause()
            chat = app.screen
            chat.query_one("#temperature").value = "1"
            chat.query_one("#max_tokens").value = "6"
            prompt = chat.query_one("#prompt")
            for request in ("Write about coffee.", "Write about trains."):
                prompt.value = request
                await pilot.press("ctrl+t")
                await wait_until(pilot, lambda: chat.query_one("#draft-picks").display, 60)
                await pilot.click("#pick-1")
                await pilot.pause()
            assert "2 pairs" in str(chat.query_one("#feedback-count").content)
            await pilot.click("#train-round")
            await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen), 120)
            training = app.screen
            new = RunDir(training.run.path)
            assert new.read_spec().method == "dpo" and new.read_spec().start_adapter
            await wait_until(pilot, lambda: training.view.status == "completed", 300)

            await pilot.press("e")
            export = app.screen
            assert isinstance(export, ExportScreen)
            quants = export.query_one("#quants")
            quants.deselect_all()
            quants.select("Q8_0")
            await pilot.press("x")
            await wait_until(pilot, lambda: export.exporting, 5)
            await wait_until(pilot, lambda: not export.exporting, 240)
            gguf = next(new.gguf_dir.glob("*Q8_0.gguf"))

            await pilot.press("c")
            chat = app.screen
            assert isinstance(chat, ChatScreen) and chat.model.gguf == gguf
            chat.query_one("#max_tokens").value = "6"
            chat.query_one("#prompt").value = "Write about coffee."
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(chat.query_one("#tuned").turns) == 2, 120)
            assert app.worker_failures == []
    finally:
        if new is not None and not wait_worker(new, timeout=1):
            stop_worker(new, timeout=30)


def test_one_command_dpo_round_with_self_pairs_then_export(exported_run, capsys):
    from localft.cli.main import main
    from localft.run.folder import list_runs

    code = main(["train", "--method", "dpo", "--from", str(exported_run.path), "--pairs", "self", *ROUND])
    captured = capsys.readouterr()
    out = captured.out + captured.err  # the drafting bar's plain lines are on stderr
    assert code in (0, None), out
    assert "draft train requests" in out and "draft: done (train requests" in out
    (new,) = [RunDir(r.path) for r in list_runs() if r.id != exported_run.id]
    pairs = [json.loads(x) for x in (new.data_dir / "pairs-train.jsonl").read_text().splitlines()]
    assert len(pairs) == 8
    code = main(["export", new.id, "--quant", "Q8_0", "--no-verify"])
    assert code in (0, None)
    assert next(new.gguf_dir.glob("*Q8_0.gguf")).stat().st_size > 0


async def test_the_chat_screens_grpo_round_trains_and_the_training_screen_shows_its_reward(exported_run):
    from localft.tui.app import LocalftApp
    from localft.tui.screens.chat import ChatScreen
    from localft.tui.screens.training import TrainingScreen
    from tests.tui_support import MACHINE, wait_until

    started: list[RunDir] = []  # the round's run, stopped below if the test ends before it does
    app = LocalftApp(machine=MACHINE, attach=False)
    try:
        async with app.run_test(size=(110, 32)) as pilot:
            await app.push_screen(ChatScreen(run_path=exported_run.path))
            await pilot.click("#train-grpo")
            await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen), 120)
            training = app.screen
            started.append(RunDir(training.run.path))
            spec = started[0].read_spec()
            assert spec.method == "grpo" and spec.start_adapter
            await wait_until(pilot, lambda: training.view.reward is not None, 300)
            stats = str(training.query_one("#stats").content)
            assert f"reward {training.view.reward:.3f} ± " in stats
            assert app.worker_failures == []
    finally:
        for run in started:
            if not wait_worker(run, timeout=1):
                stop_worker(run, timeout=30)
