"""Runs as the single source: one follower that reads events.jsonl by byte offset, one fold of the
events into a run's state, and the resume rules that `localft runs resume` and the dashboard share."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from localft.config import TrainSpec
from localft.errors import RunError
from localft.events import EventSink, Finished, Log, RunStarted, Stage, Step, read_events
from localft.paths import runs_dir
from localft.plan.planner import read_plan
from localft.run import runner
from localft.run.folder import mark_recipe_process, new_run, run_status, run_writing
from localft.run.state import fold
from tests.test_runner import PLUGIN


def write(run, *events) -> None:
    with EventSink(run.events_path) as sink:
        for event in events:
            sink(event)


def test_a_follower_goes_on_from_its_byte_offset_and_never_rereads(tmp_path):
    run = new_run(TrainSpec(steps=4), root=tmp_path)
    write(run, RunStarted(run.id, "torch", "m", "cpu", 4), Step(1, 4, 3.0, 1e-4, 10, 5.0, 1))
    first = runner.EventFollower(run)
    got = list(first.events(should_stop=lambda: True))
    assert [e.kind for e in got] == ["run_started", "step"] and first.offset == run.events_path.stat().st_size
    # A line still being written is not handed out until its newline arrives.
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write('{"kind": "step", "step": 2, "total": 4, "lo')
    again = runner.EventFollower(run, first.offset)
    assert list(again.events(should_stop=lambda: True)) == [] and again.offset == first.offset
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write('ss": 2.5, "lr": 0.0001, "tokens": 20, "tok_per_s": 5.0, "peak_mem": 1}\n')
    write(run, Finished("completed", 2))
    rest = list(again)  # training's Finished ends it; no worker needed to tell
    assert [e.kind for e in rest] == ["step", "finished"] and rest[0].loss == 2.5
    # Overwrite what was read already: a follower that re-read from byte 0 would notice.
    size = run.events_path.stat().st_size
    with open(run.events_path, "r+b") as f:
        f.write(b"x" * first.offset)
    write(run, Log("after"))
    assert [e.message for e in runner.EventFollower(run, size).events(lambda: True)] == ["after"]


def test_the_dashboard_follows_a_recipe_past_training_until_its_process_ends(tmp_path):
    """Export and eval stages come after training's Finished: the whole-run follower waits for
    them while the recipe process lives, and stops once it is gone."""
    run = new_run(TrainSpec(steps=1), root=tmp_path)
    write(
        run,
        RunStarted(run.id, "torch", "m", "cpu", 1),
        Step(1, 1, 2.0, 1e-4, 5, 5.0, 1),
        Finished("completed", 1),
    )
    writer = (
        "import sys, time\n"
        "from localft.events import EventSink, Stage\n"
        "time.sleep(1.5)\n"
        "with EventSink(sys.argv[1]) as sink:\n"
        "    sink(Stage('export', 1, 1, 'Q4_K_M'))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(run.events_path)])
    mark_recipe_process(run, proc.pid)
    assert run_writing(run)
    try:
        # The CLI's training follower ends at training's Finished, though the recipe goes on.
        assert [e.kind for e in runner.follow(run)][-1] == "finished" and proc.poll() is None
        got = list(runner.EventFollower(run, whole_run=True, poll=0.05))
    finally:
        proc.wait(timeout=30)
    assert [e.kind for e in got][-2:] == ["finished", "stage"] and not run_writing(run)


def test_one_fold_gives_the_cli_and_the_dashboard_the_same_state(tmp_path):
    run = new_run(TrainSpec(steps=3), root=tmp_path)
    write(
        run, RunStarted(run.id, "torch", "m", "cpu", 3, time=100.0), Step(1, 3, 3.0, 1e-4, 50, 5.0, 1, time=110.0),
        Step(2, 3, 2.0, 1e-4, 150, 5.0, 7, time=120.0), Stage("convert", 2, 9, "Q8_0"),
        Finished("stopped", 2),
    )  # fmt: skip
    state = fold(read_events(run.events_path))
    summary = run_status(run)
    assert (summary.status, summary.step, summary.total, summary.last_loss) == ("stopped", 2, 3, 2.0)
    assert (state.status, state.step, state.peak_mem, state.stages["convert"].done) == ("stopped", 2, 7, 2)
    assert state.pace() == pytest.approx(10.0)  # 100 tokens in 10 s of wall time between the steps


@pytest.fixture
def scripted(monkeypatch):
    for key, value in PLUGIN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", os.getcwd())


# A worker that writes its Finished and takes a moment to exit: its command line names the worker
# module and the run, as the real one's does.
EXITING_WORKER = """
import sys, time
from localft.events import EventSink, Finished
with EventSink(sys.argv[2] + "/events.jsonl") as sink:
    sink(Finished("stopped", 3))
time.sleep(2)
"""


def test_resume_applies_the_resume_rules(scripted):
    """What `localft runs resume` and the dashboard's Resume both call: a worker still exiting after
    its Finished is waited for (not refused as "already training"), a run from before plans were
    stored is planned first, and the new worker continues from the checkpoint on that plan."""
    from localft.atomic import atomic_dir, atomic_write_text
    from localft.run.checkpoints import write_state

    run = new_run(TrainSpec(steps=6, save_every=3), root=runs_dir())
    run.data_dir.mkdir()
    run.split_path("train").write_text('{"text": "hello there, a post"}\n' * 4)
    with atomic_dir(run.checkpoint_path(3)) as tmp:
        (tmp / "adapter.bin").write_bytes(b"\0" * 64)
        write_state(tmp, {"step": 3})
    write(run, RunStarted(run.id, "scripted", "embedded", "cpu", 6), Step(3, 6, 2.0, 1e-4, 30, 9.0, 1))
    cmd = [sys.executable, "-c", EXITING_WORKER, "localft.run.worker", str(run.path.resolve())]
    proc = subprocess.Popen(cmd)
    atomic_write_text(run.pid_path, f"{proc.pid}\n")
    deadline = time.monotonic() + 20
    while not isinstance(read_events(run.events_path)[-1], Finished) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.is_running(run) and read_plan(run.path) is None
    resumed = runner.resume_run(run, backend="scripted")
    proc.wait(timeout=10)
    assert resumed.checkpoint == run.checkpoint_path(3) and resumed.skipped == []
    assert read_plan(run.path).steps == 6  # planned before the new worker started
    new = list(runner.follow(run, start=resumed.start))
    assert isinstance(new[0], RunStarted) and new[0].resumed_from == 3
    assert [e.step for e in new if isinstance(e, Step)] == [4, 5, 6] and new[-1].status == "completed"
    with pytest.raises(RunError, match="already completed"):
        runner.resume_run(run, backend="scripted")
