"""Dashboard screens driven through Pilot over real run folders and a recorded tiny-model run."""

from __future__ import annotations

import pytest

from localft.events import Eval, Step, read_events
from localft.tui.app import LocalftApp
from localft.tui.messages import RunEvents
from localft.tui.screens.home import HomeScreen
from localft.tui.screens.new_run import NewRunScreen
from localft.tui.screens.training import TrainingScreen
from localft.tui.widgets.loss_chart import LossChart
from tests.tui_support import MACHINE, RECORDED, make_run, start_replay, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def recorded_points():
    events = read_events(RECORDED)
    train = {e.step: e.loss for e in events if isinstance(e, Step)}
    val = [(e.step, e.val_loss) for e in events if isinstance(e, Eval)]
    return sorted(train.items()), val


async def test_home_lists_runs_and_opens_screens():
    make_run("20261122-120000-done")
    make_run("20261122-130000-fresh", events=None)
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#runs")
        await wait_until(pilot, lambda: table.row_count == 2)
        assert [table.get_row_at(i)[2] for i in range(2)] == ["created", "completed"]  # newest first
        assert "Test CPU" in str(app.screen.query_one("#machine").content)
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("down", "o")
        assert isinstance(app.screen, TrainingScreen)
        assert app.screen.run.id == "20261122-120000-done"


async def test_training_follows_a_replayed_run_and_reattaches_on_open():
    run = make_run(events=None)
    proc = start_replay(run, delay=0.03)
    try:
        # attach=True: a running job is opened on start, as when the dashboard is reopened.
        app = LocalftApp(machine=MACHINE)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen))
            screen = app.screen
            await wait_until(pilot, lambda: screen.view.status == "completed", timeout=20)
            train, val = recorded_points()
            chart = screen.query_one(LossChart)
            assert chart.train == train and len(train) == 30
            assert chart.val == val
            progress = screen.query_one("#progress")
            assert (progress.progress, progress.total) == (30, 30)
            assert "completed" in str(screen.query_one("#status").content)
            assert "run completed at step 30" in "\n".join(screen.view.logs)
            assert screen.view.last_checkpoint == 30
            # 45 events arrived over ~1.4 s: fewer messages than events, and none lost.
            assert screen.batches < len(read_events(RECORDED))
    finally:
        proc.wait(timeout=10)


async def test_progress_messages_coalesce_and_keep_every_point():
    run = make_run(events=None)
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_training(run.path)
        await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen))
        screen = app.screen
        await pilot.pause(0.2)
        before = screen.batches
        for i in range(1, 301):  # posted faster than the screen handles them
            screen.post_message(
                RunEvents(str(run.path), [Step(i, 300, 5.0 - i / 100, 1e-4, i * 10, 50.0, 2**20)])
            )
        await wait_until(pilot, lambda: screen.view.step == 300)
        assert [s for s, _ in screen.query_one(LossChart).train] == list(range(1, 301))
        assert screen.batches - before < 300


async def test_new_run_form_shows_inline_errors_and_gates_start(tmp_path):
    data = tmp_path / "posts.jsonl"
    data.write_text('{"text": "hello"}\n')
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        screen = app.screen
        start = screen.query_one("#start")
        await wait_until(pilot, lambda: "fits" in str(screen.query_one("#fit").content))
        assert start.disabled  # no data chosen yet
        screen.query_one("#source").value = str(tmp_path / "missing.zip")
        await pilot.pause()
        assert "does not exist" in str(screen.query_one("#source-error").content)
        screen.query_one("#source").value = str(data)
        await pilot.pause()
        assert not start.disabled
        screen.query_one("#f-steps").value = "many"
        screen.query_one("#f-learning_rate").value = "2"
        await pilot.pause()
        assert "integer" in str(screen.query_one("#err-steps").content)
        assert "less than 1" in str(screen.query_one("#err-learning_rate").content)
        assert start.disabled
        screen.query_one("#f-steps").value = "20"
        screen.query_one("#f-learning_rate").value = "1e-3"
        await pilot.pause()
        assert not start.disabled and screen.spec.steps == 20 and screen.spec.learning_rate == 1e-3


async def test_fit_indicator_flags_a_model_too_big_for_this_machine():
    small = {**MACHINE, "machine": {**MACHINE["machine"], "ram_available_bytes": 2 * 2**30}}
    app = LocalftApp(machine=small, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        screen = app.screen
        screen.query_one("#model").value = "qwen2.5-3b"
        fit = screen.query_one("#fit")
        await wait_until(pilot, lambda: "NOT fit" in str(fit.content))
        assert fit.has_class("error")


async def test_resume_errors_are_notifications_with_the_cli_text(tmp_path):
    lines = RECORDED.read_text().splitlines(keepends=True)
    first_stop = next(i for i, line in enumerate(lines) if '"stopped"' in line)
    stopped = tmp_path / "stopped.jsonl"
    stopped.write_text("".join(lines[: first_stop + 1]))
    make_run("20261122-110000-stopped", events=stopped)  # its data folder is gone: resume must refuse
    make_run("20261122-120000-done")
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#runs")
        await wait_until(pilot, lambda: table.row_count == 2)
        await pilot.press("r")  # the newest run, completed
        await wait_until(pilot, lambda: len(app._notifications) == 1)
        await pilot.press("escape", "down", "r")
        await wait_until(pilot, lambda: len(app._notifications) == 2)
        texts = [n.message for n in app._notifications]
        assert texts == [
            "run 20261122-120000-done has already completed; nothing to resume "
            "(export it: `localft export 20261122-120000-done`)",
            "run 20261122-110000-stopped has no training data; start a new run instead",
        ]


async def test_theme_key_switches_between_dark_and_light():
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "textual-dark"
        await pilot.press("f2")
        assert app.theme == "textual-light"
        await pilot.press("f2")
        assert app.theme == "textual-dark"


async def test_file_picker_fills_the_data_source(tmp_path, monkeypatch):
    data = tmp_path / "posts.csv"
    data.write_text("text\nhello\n")
    monkeypatch.chdir(tmp_path)
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", "ctrl+f")
        tree = app.screen.query_one("#tree")
        await wait_until(pilot, lambda: tree.root.children)
        tree.focus()
        tree.move_cursor(next(n for n in tree.root.children if str(n.label) == "posts.csv"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, NewRunScreen))
        assert app.screen.query_one("#source").value == str(data)


async def test_a_failing_background_job_is_a_notification_not_a_crash():
    run = make_run("20261122-120000-broken", events=None)
    run.events_path.mkdir()  # a damaged run folder: events.jsonl is a directory
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_training(run.path)
        await wait_until(pilot, lambda: app._notifications)
        assert app.worker_failures[0].startswith("IsADirectoryError")
        assert "details in logs/dashboard.log" in [n.message for n in app._notifications][-1]
        await pilot.press("escape")  # the dashboard still answers
        assert isinstance(app.screen, HomeScreen)


async def test_training_shows_a_reinforcement_rounds_mean_reward_and_spread_beside_the_loss():
    from localft.events import EventSink, Finished, RunStarted

    run = make_run(events=None)
    rewards = [(0.2, 0.11), (0.35, 0.09), (0.5, 0.04)]
    with EventSink(run.events_path) as sink:  # what a grpo worker writes
        sink(RunStarted(run_id=run.id, backend="torch", model="embedded", device="cpu", total_steps=3))
        for step, (reward, spread) in enumerate(rewards, 1):
            sink(Step(step, 3, 0.1 * step, 1e-5, 200 * step, 40.0, 2**20, reward=reward, reward_std=spread))
            if step > 1:  # held-out rewards at steps 2 and 3: the best is step 2's, at a higher loss
                sink(Eval(step, 3.0 - step * 0.1, reward=0.7 - step * 0.1, reward_std=0.05))
        sink(Finished(status="completed", step=3, best_step=2, best_val_loss=2.8, best_reward=0.5))
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_training(run.path)
        await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.view.status == "completed")
        stats = str(screen.query_one("#stats").content).splitlines()
        assert stats[1:5] == ["loss 0.3000", "reward 0.500 ± 0.040", "best held-out reward 0.500 @ 2",
                              "held-out 0.500 0.400"]  # fmt: skip
        assert "step 2: validation loss 2.8000, held-out reward 0.500 ± 0.050" in screen.view.logs
