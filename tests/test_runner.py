"""The worker process: events stream out, SIGINT stops it with a checkpoint, SIGKILL marks it failed."""

from __future__ import annotations

import os
import signal
import time

import pytest

from localft import runner
from localft.config import TrainSpec
from localft.events import Finished, RunStarted, Step, read_events
from localft.runs import new_run, run_status

PLUGIN = {"LOCALFT_BACKENDS": "scripted=tests.scripted_backend:ScriptedBackend"}


@pytest.fixture
def scripted(monkeypatch):
    for key, value in PLUGIN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", os.getcwd())


def _start(tmp_path, steps=400, save_every=10):
    run = new_run(TrainSpec(steps=steps, save_every=save_every, eval_every=5), root=tmp_path)
    run.data_dir.mkdir()
    run.split_path("train").write_text('{"text": "hello"}\n')
    runner.start_worker(run, backend="scripted")
    return run


def _wait_for_steps(run, n, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(isinstance(e, Step) for e in read_events(run.events_path)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker did not reach {n} steps; log:\n{run.log_path.read_text()}")


def test_worker_streams_events_and_completes(tmp_path, scripted):
    run = _start(tmp_path, steps=8, save_every=4)
    events = list(runner.follow(run))
    assert isinstance(events[0], RunStarted)
    assert [e.step for e in events if isinstance(e, Step)] == list(range(1, 9))
    assert events[-1] == Finished("completed", 8, 5, events[-1].best_val_loss, None, events[-1].time)
    assert run_status(run).status == "completed"


def test_sigint_stops_gracefully_with_a_checkpoint_and_resume_continues(tmp_path, scripted):
    run = _start(tmp_path)
    _wait_for_steps(run, 12)
    assert runner.stop_worker(run, timeout=30)
    last = read_events(run.events_path)[-1]
    assert isinstance(last, Finished) and last.status == "stopped"
    stopped_at = last.step
    assert run.latest_checkpoint().name == f"step-{stopped_at:06d}"

    start = runner.events_size(run)
    runner.resume_worker(run, backend="scripted")
    _wait_for_steps(run, stopped_at + 3)
    runner.stop_worker(run, timeout=30)
    new = list(runner.follow(run, start=start))
    assert new[0].resumed_from == stopped_at
    steps = [e.step for e in new if isinstance(e, Step)]
    assert steps[0] == stopped_at + 1  # no repeated or skipped step


def test_sigkill_marks_the_run_failed_and_keeps_checkpoints(tmp_path, scripted):
    run = _start(tmp_path)
    _wait_for_steps(run, 15)
    os.kill(run.worker_pid(), signal.SIGKILL)
    runner.wait_worker(run, timeout=10)
    assert run_status(run).status == "failed"
    end = list(runner.follow(run))[-1]
    assert end.status == "failed" and "runs resume" in end.error
    assert run.latest_checkpoint() is not None


def test_a_backend_error_ends_the_run_failed_with_its_message(tmp_path, scripted):
    run = new_run(TrainSpec(steps=3), root=tmp_path)
    runner.start_worker(run, backend="nonexistent")
    end = list(runner.follow(run))[-1]
    assert end.status == "failed" and "unknown backend 'nonexistent'" in end.error
