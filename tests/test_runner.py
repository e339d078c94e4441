"""The worker process: events stream out, a stop request (the stop file on every OS, SIGINT on POSIX)
stops it with a checkpoint, SIGKILL marks it failed with a resume hint, and `runs` says what to do."""

from __future__ import annotations

import os
import signal
import time

import pytest

from localft.config import TrainSpec
from localft.events import Finished, RunStarted, Step, read_events
from localft.paths import runs_dir
from localft.run import runner
from localft.run.folder import new_run, run_status
from tests.test_cli import run_cli

PLUGIN = {"LOCALFT_BACKENDS": "scripted=tests.scripted_backend:ScriptedBackend"}


@pytest.fixture
def scripted(monkeypatch):
    for key, value in PLUGIN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", os.getcwd())


POST = '{"text": "Hello there, this is a short post about coffee and code."}\n'


def _start(root, steps=400, save_every=10):
    spec = TrainSpec(steps=steps, save_every=save_every, eval_every=5, batch_size=1, max_seq_len=64)
    run = new_run(spec, root=root)
    run.data_dir.mkdir()
    run.split_path("train").write_text(POST * 4)
    run.split_path("valid").write_text(POST)
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
    # Validation at step 5 and at the last step; the scripted loss falls, so the last is the best.
    assert events[-1] == Finished("completed", 8, 8, events[-1].best_val_loss, None, events[-1].time)
    assert run_status(run).status == "completed"


def test_sigint_stops_gracefully_with_a_checkpoint_and_resume_continues(tmp_path, scripted):
    run = _start(tmp_path)
    _wait_for_steps(run, 12)
    assert runner.stop_worker(run, timeout=30)
    last = read_events(run.events_path)[-1]
    assert isinstance(last, Finished) and last.status == "stopped"
    stopped_at = last.step
    assert run.latest_checkpoint().name == f"step-{stopped_at:06d}"

    resumed = runner.resume_run(run, backend="scripted")
    _wait_for_steps(run, stopped_at + 3)
    runner.stop_worker(run, timeout=30)
    new = list(runner.follow(run, start=resumed.start))
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


def test_the_stop_file_alone_stops_the_worker(tmp_path, scripted):
    """The request every OS supports (Windows has no SIGINT for a detached process)."""
    run = _start(tmp_path)
    _wait_for_steps(run, 5)
    assert runner.stop_worker(run, timeout=30, signal_too=False)
    last = read_events(run.events_path)[-1]
    assert isinstance(last, Finished) and last.status == "stopped"
    assert run.latest_checkpoint().name == f"step-{last.step:06d}"
    assert not run.stop_path.exists()  # a resume is not stopped by the old request


def test_runs_list_and_show_say_how_to_resume_a_crashed_run(capsys, scripted):
    run = _start(runs_dir())
    _wait_for_steps(run, 12)
    os.kill(run.worker_pid(), signal.SIGKILL)
    runner.wait_worker(run, timeout=10)
    hint = f"resume: `localft runs resume {run.id}` continues from step-000010"
    code, out, _ = run_cli(capsys, "runs", "list")
    assert code == 0 and "failed" in out and hint in out
    code, out, _ = run_cli(capsys, "runs", "show", run.id)
    assert code == 0 and hint in out


def test_resuming_a_completed_run_is_refused_without_a_worker(capsys, scripted):
    run = _start(runs_dir(), steps=3, save_every=3)
    list(runner.follow(run))
    runner.wait_worker(run, timeout=10)
    pid, size = run.worker_pid(), runner.events_size(run)
    code, out, err = run_cli(capsys, "runs", "resume", run.id)
    assert code == 2
    assert (
        err
        == f"error: run {run.id} has already completed; nothing to resume (export it: `localft export {run.id}`)\n"
    )
    assert (run.worker_pid(), runner.events_size(run)) == (pid, size)  # no worker was started
    code, out, _ = run_cli(capsys, "runs", "list")
    assert "completed" in out and "resume:" not in out


def test_a_train_that_fails_on_its_data_leaves_no_run(capsys, tmp_path, tiny_models):
    bad = tmp_path / "posts.jsonl"
    bad.write_text('{"messages": []}\n{"text": ""}\n')
    model = tiny_models("llama")
    capsys.readouterr()  # building the model prints progress
    code, _, err = run_cli(capsys, "train", str(bad), "--model", str(model))
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    assert not runs_dir().exists() or list(runs_dir().iterdir()) == []
    assert bad.read_text() == '{"messages": []}\n{"text": ""}\n'  # the user's file is untouched


def test_a_resume_that_fails_at_once_ends_where_the_run_was(capsys, scripted):
    """Not "failed at step 0": the step it had reached stays the run's step."""
    run = _start(runs_dir())
    _wait_for_steps(run, 12)
    assert runner.stop_worker(run, timeout=30)
    stopped_at = read_events(run.events_path)[-1].step
    resumed = runner.resume_run(run, backend="nonexistent")
    end = list(runner.follow(run, start=resumed.start))[-1]
    assert end.status == "failed" and end.step == stopped_at
    code, out, _ = run_cli(capsys, "runs", "show", run.id)
    assert f"run failed at step {stopped_at}" in out
