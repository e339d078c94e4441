"""MLX on two processes through mlx.launch (ring backend over 127.0.0.1, mlx[cpu]), started as
localft starts any run: the curve of the same global batch as one process, rank 0 alone writing,
and kill -9 of one rank failing the run in one line, then a resume landing on the same curve (one
run does both: process start-up is what these tests cost)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlx_lm")

from localft.events import Checkpoint, Eval, Finished, RunStarted, Step, read_events  # noqa: E402
from tests.training import make_run  # noqa: E402

pytestmark = [pytest.mark.mlx, pytest.mark.slow]
# A global batch of 4 rows: one process x micro-batch 4, or two x 2. Dropout 0 (the default): each
# rank draws its own masks, so only a run without dropout repeats one process's numbers.
RUN = dict(backend="mlx", steps=4, max_seq_len=64, eval_every=2, save_every=2, log_every=1, learning_rate=1e-2,
           n_valid=4)  # fmt: skip


def train_in_worker(run, timeout: float = 300) -> list:
    """The run's worker, started and awaited as `localft train` and `runs resume` do; its events."""
    from localft.run.runner import start_worker, wait_worker

    start_worker(run)
    assert wait_worker(run, timeout), f"no end within {timeout:.0f} s: {run.log_path.read_text()[-2000:]}"
    return read_events(run.events_path)


def curve(events) -> dict:
    """step -> loss, and the validation losses (the last attempt's value where a step ran twice)."""
    return {e.step: e.loss for e in events if isinstance(e, Step)}, {
        e.step: e.val_loss for e in events if isinstance(e, Eval)
    }


def adapter_weights(run) -> dict:
    import mlx.core as mx

    return {k: np.array(v) for k, v in mx.load(str(run.adapter_dir / "adapters.safetensors")).items()}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_models):
    spec, run = make_run(tmp_path_factory.mktemp("one"), tiny_models("llama"), batch_size=4, **RUN)
    events = train_in_worker(run)
    assert events[-1].status == "completed", run.log_path.read_text()[-2000:]
    return curve(events), adapter_weights(run)


def assert_same_training(run, events, one_process) -> None:
    (losses, vals), weights = one_process
    got_losses, got_vals = curve(events)
    assert sorted(got_losses) == [1, 2, 3, 4] and got_losses == pytest.approx(losses, rel=1e-5)
    assert got_vals == pytest.approx(vals, rel=1e-5)
    got = adapter_weights(run)
    assert got.keys() == weights.keys()
    for name, value in weights.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def rank_pid(run, rank: int, timeout: float = 120) -> int:
    """The process mlx.launch started as `rank` of this run (MLX_RANK in its environment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(run.path.resolve()).encode() in cmd and f"MLX_RANK={rank}".encode() in env:
                return int(pid)
        time.sleep(0.1)
    raise AssertionError(f"no rank {rank} process of {run.id}")


def test_two_processes_train_the_curve_of_one_and_a_resume_after_kill_9_of_a_rank_lands_on_it(
    tmp_path, tiny_models, one_process
):
    """Steps 1-2 on two processes, kill -9 of rank 1 after the step-2 checkpoint, `runs resume`
    for steps 3-4: every loss, validation loss and the adapter equal one process's at the same
    global batch, and rank 0 alone wrote."""
    from localft.run.runner import resume_run, start_worker, wait_worker

    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=2, nproc=2, **RUN)
    start_worker(run)
    victim = rank_pid(run, 1)
    deadline = time.monotonic() + 240
    while not any(isinstance(e, Checkpoint) for e in read_events(run.events_path)):
        assert time.monotonic() < deadline, run.log_path.read_text()[-2000:]
        time.sleep(0.05)
    os.kill(victim, signal.SIGKILL)
    assert wait_worker(run, 120)
    end = read_events(run.events_path)[-1]
    assert isinstance(end, Finished) and end.status == "failed"
    assert "rank 1 was killed by SIGKILL" in end.error and "\n" not in end.error, end.error
    assert not rank_alive(run), "a rank outlived the failed run"

    resumed = resume_run(run)
    assert resumed.checkpoint is not None and resumed.checkpoint.name == "step-000002"
    assert wait_worker(run, 300), run.log_path.read_text()[-2000:]
    events = read_events(run.events_path)
    assert events[-1] == Finished("completed", 4, 4, events[-1].best_val_loss, None, events[-1].time)
    assert_same_training(run, events, one_process)
    # Rank 0 alone writes: one start and one event per step an attempt; each checkpoint holds
    # both ranks' data positions, and no rank's staging folder is left behind.
    assert [e.resumed_from for e in events if isinstance(e, RunStarted)] == [0, 2]
    assert [e.step for e in events if isinstance(e, Step)][-2:] == [3, 4]
    for step in (2, 4):
        files = {p.name for p in run.checkpoint_path(step).iterdir()}
        assert {"rank-0.json", "rank-1.json", "state.json", "adapters.safetensors"} <= files, files
    assert not list(run.checkpoints_dir.glob(".*"))


def rank_alive(run) -> bool:
    try:
        rank_pid(run, 0, timeout=0.5)
    except AssertionError:
        return False
    return True
