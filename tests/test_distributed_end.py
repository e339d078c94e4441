"""The end of a several-process run, for real (torch's launcher, 2 ranks, gloo): every schedule ends
with its checkpoint, adapter and Finished (validation only at the last step on fewer validation rows
than ranks, validation at the last step on uneven shares, early stopping on rank 0's decision, a
stop request during the last step), and a rank that stalls fails the run in one line within its
bound instead of hanging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from localft.events import Checkpoint, Eval, Finished, Step, read_events
from localft.train.watchdog import CollectiveWatch
from localft.train.world import World
from tests.command_support import localft, wait_for
from tests.test_distributed import end_group, rank_process
from tests.training import make_run, pause_env, train_run

END = dict(steps=4, log_every=1, save_every=100)


def test_a_rank_short_of_validation_rows_runs_as_many_forwards_as_rank_0():
    rows = ["a", "b", "c"]
    assert World(0, 2).even_batches(rows, 1) == [(["a"], True), (["c"], True)]
    assert World(1, 2).even_batches(rows, 1) == [(["b"], True), (["a"], False)]  # a filler, not counted
    assert World(1, 2).even_batches(["a"], 2) == [(["a"], False)]
    assert World(0, 1).even_batches(rows, 2) == [(["a", "b"], True), (["c"], True)]


def test_the_watch_reports_a_stall_once_with_where_and_not_while_progressing():
    calls: list[str] = []
    watch = CollectiveWatch(World(1, 2), 0.5, calls.append)
    try:
        for _ in range(8):  # progress every 0.1 s: no stall
            watch.progress("step 3")
            time.sleep(0.1)
        assert calls == []
        watch.progress("validation after step 4")
        wait_for(lambda: calls, timeout=10, what="the stall report")
        time.sleep(0.3)
    finally:
        watch.close()
    assert len(calls) == 1 and "at validation after step 4" in calls[0] and "collective_timeout_s" in calls[0]


def run_group_worker(run, env: dict | None = None) -> subprocess.Popen:
    log = open(run.log_path, "ab")  # noqa: SIM115 - the worker's output, closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})},
    )  # fmt: skip


def assert_ended_with_checkpoint_and_adapter(run, status: str, step: int) -> list:
    events = read_events(run.events_path)
    assert [(e.status, e.step) for e in events if isinstance(e, Finished)] == [(status, step)], (
        run.log_path.read_text()[-3000:]
    )
    assert [e.step for e in events if isinstance(e, Checkpoint)][-1] == step
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    return events


@pytest.mark.slow
def test_the_issue_run_validating_only_at_the_end_on_one_row_finishes(tmp_path):
    """The reported hang: 2 processes, the embedded model, an X export whose validation split is one
    example (rank 1 had no row: rank 0 waited in a DDP forward rank 1 never ran)."""
    from pathlib import Path

    export = Path(__file__).parent / "fixtures" / "exports" / "x-archive"
    done = localft("train", export, "--model", "embedded", "--backend", "torch", "--steps", "4",
                   "--batch-size", "2", "--nproc", "2", "--set", "max_seq_len=256", "--set", "eval_every=100",
                   "--name", "end", timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    from localft.paths import runs_dir
    from localft.run.folder import RunDir

    run = RunDir(next(Path(runs_dir()).glob("*end*")))
    events = assert_ended_with_checkpoint_and_adapter(run, "completed", 4)
    assert [e.step for e in events if isinstance(e, Eval)] == [4], done.stdout


@pytest.mark.slow
def test_validation_at_the_last_step_on_uneven_shares_and_a_stop_request_during_it(tiny_models, tmp_path):
    """eval_every == steps on 3 validation rows (2 forwards on rank 0, 1 on rank 1), and the stop
    file written while rank 0 is held right after the last step: the run ends with its checkpoint."""
    flag = tmp_path / "pause-once"
    spec, run = make_run(
        tmp_path, tiny_models("llama"), n_valid=3, batch_size=1, nproc=2, eval_every=4, **END
    )
    worker = run_group_worker(run, pause_env("step", 4, flag))
    try:
        wait_for(lambda: not flag.exists(), timeout=240, what="rank 0 held after step 4")
        run.stop_path.write_text("stop\n")
        os.kill(rank_process(worker.pid, 0).pid, signal.SIGCONT)
        assert worker.wait(timeout=240) == 0
    finally:
        end_group(worker.pid)
    events = assert_ended_with_checkpoint_and_adapter(run, "stopped", 4)
    assert [e.step for e in events if isinstance(e, Eval)] == [4]


@pytest.mark.slow
def test_early_stopping_ends_every_rank_at_the_one_process_step(tiny_models, tmp_path):
    settings = dict(END, steps=8, eval_every=1, early_stopping_patience=1, learning_rate=3e-2, n_valid=3)
    one = train_run(*make_run(tmp_path / "one", tiny_models("llama"), batch_size=2, **settings))
    stop_step = [e.step for e in one if isinstance(e, Eval)]  # early stopping acts at an evaluation
    assert stop_step[-1] < 8, "these settings must stop early on one process"
    spec, run = make_run(tmp_path / "two", tiny_models("llama"), batch_size=1, nproc=2, **settings)
    worker = run_group_worker(run)
    try:
        assert worker.wait(timeout=300) == 0, run.log_path.read_text()[-3000:]
    finally:
        end_group(worker.pid)
    events = assert_ended_with_checkpoint_and_adapter(run, "completed", stop_step[-1])
    want = [e.val_loss for e in one if isinstance(e, Eval)]
    assert [e.val_loss for e in events if isinstance(e, Eval)] == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
def test_a_rank_that_stalls_fails_the_run_in_one_line_within_its_bound(tiny_models, tmp_path):
    """Rank 0 stopped (SIGSTOP) after step 2: rank 1 waits in the next collective and, after the
    bound, ends the run with one line naming itself and where it waited."""
    flag, bound = tmp_path / "pause-once", 10
    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=1, nproc=2, eval_every=100,
                         collective_timeout_s=bound, **{**END, "steps": 6})  # fmt: skip
    worker = run_group_worker(run, pause_env("step", 2, flag))
    try:
        wait_for(lambda: not flag.exists(), timeout=240, what="rank 0 held after step 2")
        held = time.monotonic()
        rank0 = rank_process(worker.pid, 0)
        wait_for((run.path / "ranks" / "rank-1.error").exists, timeout=bound + 60, what="rank 1's report")
        waited = time.monotonic() - held
        os.kill(rank0.pid, signal.SIGCONT)  # the launcher's SIGTERM is waiting for it
        assert worker.wait(timeout=120) == 2
    finally:
        end_group(worker.pid)
    # rank 1's clock starts at its last progress mark, which can come just before this test sees the hold
    assert bound - 2 <= waited < bound + 30
    end = read_events(run.events_path)[-1]
    assert isinstance(end, Finished) and end.status == "failed" and "\n" not in end.error
    assert end.error.startswith(f"rank 1 failed: no progress for over {bound} s at step 3"), end.error
    assert (
        "at step 3" in end.error
        and max(e.step for e in read_events(run.events_path) if isinstance(e, Step)) == 2
    )


@pytest.mark.slow
def test_a_time_budget_on_a_first_two_process_run_fixes_one_count_for_every_rank(tiny_models, tmp_path):
    from localft.plan.planner import read_plan

    spec, run = make_run(tmp_path, tiny_models("llama"), n_train=120, n_valid=3, batch_size=1, nproc=2,
                         steps=None, epochs=50, time_budget_min=0.25, eval_every=5, save_every=1000)  # fmt: skip
    worker = run_group_worker(run)
    try:
        assert worker.wait(timeout=300) == 0, run.log_path.read_text()[-3000:]
    finally:
        end_group(worker.pid)
    plan = read_plan(run.path)
    assert plan.pace_from == f"{run.id}'s first 4 steps" and 4 <= plan.steps < 1000
    assert_ended_with_checkpoint_and_adapter(run, "completed", plan.steps)
