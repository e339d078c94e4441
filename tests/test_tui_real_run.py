"""A real tiny-model run from the dashboard alone: start it from the New run screen, stop and resume
it, watch it finish, export a GGUF and chat with it."""

from __future__ import annotations

import json
import os
import random
import signal

import pytest

from localft.run.folder import RunDir
from localft.run.runner import stop_worker, wait_worker
from localft.tui.app import LocalftApp
from localft.tui.screens.chat import ChatScreen
from localft.tui.screens.export import ExportScreen
from localft.tui.screens.training import TrainingScreen
from localft.tui.widgets.loss_chart import LossChart
from tests.training import pause_env
from tests.tui_support import MACHINE, record_notifications, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
# The worker pauses itself after step STOP_AT until the dashboard's stop request is in: the stop
# lands there whatever the machine's speed (a tiny model does ~30 steps a second when idle).
STEPS, STOP_AT = 12, 2

WORDS = ["garden", "river", "coffee", "bicycle", "library", "winter", "market", "violin", "harbor", "recipe", "kettle", "lantern", "mountain", "notebook", "orchard", "ferry", "pottery", "meadow", "compass", "biscuit"]  # fmt: skip


@pytest.fixture
def anyio_backend():
    return "asyncio"


def write_chat_data(path, n=40, seed=1):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            words = rng.sample(WORDS, 8)
            reply = (
                f"Post {i}: " + " ".join(words) + ". " + " and ".join(rng.sample(WORDS, 4)) + " made my week."
            )
            row = {"messages": [{"role": "user", "content": f"Write about {words[0]}."},
                                {"role": "assistant", "content": reply}]}  # fmt: skip
            f.write(json.dumps(row) + "\n")


async def test_train_stop_resume_export_and_chat_from_the_dashboard(tmp_path, tiny_models, monkeypatch):
    for name, value in pause_env("step", STOP_AT, tmp_path / "pause-once").items():
        monkeypatch.setenv(name, value)  # the dashboard's workers inherit its environment
    data = tmp_path / "chat.jsonl"
    write_chat_data(data)
    app = LocalftApp(machine=MACHINE, attach=False)
    run = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("n")
            form = app.screen
            form.query_one("#source").value = str(data)
            form.query_one("#model-path").value = str(tiny_models("llama"))
            for name, value in {
                "steps": str(STEPS),
                "batch_size": "2",
                "max_seq_len": "64",
                "learning_rate": "1e-2",
            }.items():
                form.query_one(f"#f-{name}").value = value
            await pilot.pause()
            assert not form.query_one("#start").disabled
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen), timeout=120)
            screen = app.screen
            run = screen.run
            await wait_until(pilot, lambda: screen.view.step == STOP_AT, timeout=120)
            await pilot.press("s")  # graceful stop: the worker checkpoints, then says "stopped"
            await wait_until(pilot, lambda: run.stop_path.is_file(), timeout=10)
            os.kill(
                run.worker_pid(), signal.SIGCONT
            )  # the paused worker reads the request before its next step
            await wait_until(pilot, lambda: screen.view.status == "stopped", timeout=60)
            assert run.latest_checkpoint() == run.checkpoint_path(STOP_AT)
            stopped_at = screen.view.step
            await wait_until(pilot, lambda: not screen.query_one("#resume").disabled, timeout=60)
            await pilot.press("r")
            await wait_until(pilot, lambda: screen.view.status == "completed", timeout=120)
            steps = [s for s, _ in screen.query_one(LossChart).train]
            assert steps == list(range(1, STEPS + 1)) and stopped_at == STOP_AT
            assert screen.query_one("#progress").progress == STEPS
            assert f"resumed from step {stopped_at}" in "\n".join(screen.view.logs)

            await pilot.press("e")
            export = app.screen
            assert isinstance(export, ExportScreen)
            quants = export.query_one("#quants")
            quants.deselect_all()
            quants.select("Q8_0")
            said = record_notifications(app)
            await pilot.press("x")
            await wait_until(pilot, lambda: export.exporting, timeout=5)
            await wait_until(pilot, lambda: not export.exporting, timeout=180)
            await wait_until(pilot, lambda: said, timeout=10)  # a failure reaches the app as a message
            assert said == ["export finished"]
            assert {"merge", "convert", "verify"} <= set(export.view.stages)
            gguf = next(run.gguf_dir.glob("*Q8_0.gguf"))
            assert "Q8_0" in str(export.query_one("#export-result").content)

            await pilot.press("c")
            chat = app.screen
            assert isinstance(chat, ChatScreen) and chat.model.gguf == gguf and chat.model.adapter is None
            chat.query_one("#max_tokens").value = "12"
            chat.query_one("#prompt").value = "Write about coffee."
            await pilot.press("enter")
            tuned = chat.query_one("#tuned")
            await wait_until(pilot, lambda: len(tuned.turns) == 2, timeout=180)
            assert tuned.turns[0].endswith("Write about coffee.") and not chat.busy
            assert (run.path / "chat.log").is_file()  # llama.cpp wrote there, not on the screen
            assert app.worker_failures == []  # no background job failed along the way
    finally:
        if run is not None and not wait_worker(RunDir(run.path), timeout=1):
            os.kill(run.worker_pid(), signal.SIGCONT)  # a worker left paused cannot read a stop request
            stop_worker(RunDir(run.path), timeout=30)
