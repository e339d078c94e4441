"""Several processes, for real: torch's launcher starts 2 rank workers on the CPU (gloo), DDP and
FSDP2 train the same curve and adapter as one process at the same global batch, rank 0 alone
writes, a rank killed with -9 fails the run in one line and `runs resume` finishes the curve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from localft.events import Checkpoint, Eval, Finished, Log, RunStarted, Step, read_events
from localft.run.folder import RunDir, run_status
from tests.command_support import localft, wait_for
from tests.training import make_run, train_run

pytestmark = pytest.mark.slow
RUN = dict(steps=6, log_every=1, eval_every=3, save_every=2)  # global batch 2 rows a step


def last_losses(events) -> dict[int, float]:
    """Each step's loss as last reported (a resumed run reports the steps after its checkpoint again)."""
    return {e.step: e.loss for e in events if isinstance(e, Step)}


def adapter_tensors(run: RunDir) -> dict:
    from safetensors.torch import load_file

    return load_file(run.adapter_dir / "adapter_model.safetensors")


def assert_same_adapter(got: dict, want: dict) -> None:
    import torch

    assert got.keys() == want.keys()
    for name, tensor in want.items():
        assert torch.allclose(got[name], tensor, atol=1e-5, rtol=1e-4), name


@pytest.fixture(scope="module")
def one_process(tiny_models, tmp_path_factory):
    """The reference: one process, micro-batch 2."""
    spec, run = make_run(tmp_path_factory.mktemp("one"), tiny_models("llama"), batch_size=2, **RUN)
    events = train_run(spec, run)
    return last_losses(events), [e.val_loss for e in events if isinstance(e, Eval)], adapter_tensors(run)


def run_worker(run: RunDir) -> list:
    """The run's worker as localft starts it; all of its events."""
    with open(run.log_path, "ab") as log:
        code = subprocess.run(
            [sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=300,
        ).returncode  # fmt: skip
    assert code == 0, run.log_path.read_text()[-3000:]
    return read_events(run.events_path)


@pytest.mark.parametrize("sharding", ["none", "fsdp"])
def test_two_processes_train_the_one_process_curve(one_process, tiny_models, tmp_path, sharding):
    losses, val_losses, adapter = one_process
    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=1, nproc=2, sharding=sharding, **RUN)
    events = run_worker(run)
    assert last_losses(events) == pytest.approx(losses, rel=1e-5)
    assert [e.val_loss for e in events if isinstance(e, Eval)] == pytest.approx(val_losses, rel=1e-5)
    assert_same_adapter(adapter_tensors(run), adapter)
    # Rank 0 alone wrote: one start, each step once, one Finished; both ranks' files in the checkpoint.
    assert sum(isinstance(e, RunStarted) for e in events) == 1 and len(last_losses(events)) == 6
    assert [e.status for e in events if isinstance(e, Finished)] == ["completed"]
    how = "FSDP2" if sharding == "fsdp" else "DDP"
    assert any(isinstance(e, Log) and f"2 processes with {how}" in e.message for e in events)
    from localft.run.checkpoints import STATE_FILE, verify_checkpoint

    ckpt = run.latest_checkpoint()
    recorded = json.loads((ckpt / STATE_FILE).read_text())["files"]
    assert {"rank-0.json", "rank-1.json"} <= recorded.keys() and verify_checkpoint(ckpt) is None


def rank_process(worker_pid: int, rank: int) -> psutil.Process:
    for proc in psutil.Process(worker_pid).children(recursive=True):
        try:
            if "--rank-worker" in proc.cmdline() and proc.environ().get("RANK") == str(rank):
                return proc
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no rank {rank} process under the worker {worker_pid}")


def end_group(pid: int | None) -> None:
    """A failed test's leftovers: the worker and every process it started."""
    if pid is None or not psutil.pid_exists(pid):
        return
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for proc in procs:
        proc.kill()
    psutil.wait_procs(procs, timeout=10)


def test_kill_9_of_one_rank_fails_the_run_and_resume_finishes_the_curve(one_process, tiny_models, tmp_path):
    from localft.run import runner

    losses, _, adapter = one_process
    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=1, nproc=2, **RUN)
    pid = runner.start_worker(run)
    try:
        wait_for(lambda: any(isinstance(e, Checkpoint) for e in read_events(run.events_path)), timeout=240,
                 what="the first checkpoint")  # fmt: skip
        victim = rank_process(pid, 1)
        victim.send_signal(signal.SIGKILL)
        assert runner.wait_worker(run, timeout=120)
        finished = read_events(run.events_path)[-1]
        assert isinstance(finished, Finished) and finished.status == "failed"
        assert (
            finished.error.startswith("training process rank 1 was killed by SIGKILL")
            and str(run.log_path) in finished.error
        )
        assert run_status(run).status == "failed"

        runner.resume_run(run)  # what `localft runs resume` does: the same N, from the checkpoint
        assert runner.wait_worker(run, timeout=240)
    finally:
        end_group(run.worker_pid())
    events = read_events(run.events_path)
    assert events[-1].status == "completed", run.log_path.read_text()[-3000:]
    assert last_losses(events) == pytest.approx(losses, rel=1e-5)
    assert_same_adapter(adapter_tensors(run), adapter)


def test_a_resume_with_another_process_count_is_refused(one_process, tiny_models, tmp_path):
    """A checkpoint of a 1-process run, resumed as 2 processes: one line naming the N to use."""
    from localft.plan.planner import read_plan, write_plan

    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=2, **{**RUN, "steps": 2})
    train_run(spec, run)
    plan = read_plan(run.path)
    write_plan(run.path, plan.__class__(**{**plan.to_dict(), "world_size": 2, "steps": 4}))
    with open(run.log_path, "ab") as log:
        subprocess.run([sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=300)  # fmt: skip
    finished = read_events(run.events_path)[-1]
    assert finished.status == "failed"
    # Every rank refuses; the launcher names whichever failed first.
    assert finished.error.removeprefix("rank 0").removeprefix("rank 1") == (
        f" failed: run {run.id} was trained with 1 process and this attempt has 2; "
        "resume it with one process (no --nproc)"
    )


def test_cli_nproc_2_run_is_stopped_resumed_and_exported(tiny_models, tmp_path):
    data = tmp_path / "chat.jsonl"
    from tests.training import chat_rows, write_jsonl

    write_jsonl(data, chat_rows(24))
    model = tiny_models("llama")
    started = localft("train", data, "--model", model, "--nproc", "2", "--batch-size", "1", "--steps", "200",
                      "--name", "two", "--detach", "--set", "max_seq_len=128", "--set", "save_every=2")  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert "processes: 2 (data-parallel), 2 rows a step in all" in started.stdout
    from localft.paths import runs_dir

    run = RunDir(next(Path(runs_dir()).glob("*two*")))
    try:
        wait_for(lambda: any(isinstance(e, Step) and e.step >= 2 for e in read_events(run.events_path)),
                 timeout=240, what="step 2")  # fmt: skip
        stopped = localft("runs", "stop", run.id)
        assert stopped.returncode == 0 and f"run {run.id} stopped" in stopped.stdout, (
            stopped.stdout + stopped.stderr
        )
        first = read_events(run.events_path)[-1]
        assert first.status == "stopped" and first.step >= 2
        assert not any(p.info["cmdline"] and "--rank-worker" in p.info["cmdline"] and str(run.path) in " ".join(p.info["cmdline"])
                       for p in psutil.process_iter(["cmdline"]))  # fmt: skip

        resumed = localft("runs", "resume", run.id, "--detach")
        assert f"run {run.id} resumed from step-{first.step:06d}" in resumed.stdout, (
            resumed.stdout + resumed.stderr
        )
        wait_for(lambda: any(isinstance(e, Step) and e.step > first.step + 1 for e in read_events(run.events_path)),
                 timeout=240, what="a step after the resume")  # fmt: skip
        assert localft("runs", "stop", run.id).returncode == 0
    finally:
        end_group(run.worker_pid())
    events = read_events(run.events_path)
    starts = [e for e in events if isinstance(e, RunStarted)]
    assert starts[-1].resumed_from == first.step and events[-1].status == "stopped"
    pytest.importorskip("llama_cpp")
    exported = localft("export", run.id, "--quant", "F16", "--no-verify")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert list(run.path.rglob("*.gguf"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_group_ends_when_the_runs_worker_is_killed(tiny_models, tmp_path):
    """No rank trains on unwatched: kill -9 of the run's worker ends the launcher and its ranks."""
    from localft.run import runner

    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=1, nproc=2, **{**RUN, "steps": 500})
    pid = runner.start_worker(run)
    group: list[psutil.Process] = []
    try:
        wait_for(lambda: any(isinstance(e, Step) for e in read_events(run.events_path)), timeout=240,
                 what="the first step")  # fmt: skip
        group = psutil.Process(pid).children(recursive=True)
        assert sum("--rank-worker" in p.cmdline() for p in group) >= 2
        os.kill(pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(group, timeout=60)
        assert not alive
        assert not runner.is_running(run) and run_status(run).status == "failed"
    finally:
        end_group(pid)
        for proc in group:  # what the worker left, if the group did not end with it
            if proc.is_running():
                proc.kill()
