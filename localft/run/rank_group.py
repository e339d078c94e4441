"""A run on several processes: the run's worker starts the backend's launcher as its child and
watches it (a dead rank fails the run in one line); each rank is `localft.run.worker RUN --rank-worker`,
training its shard, with rank 0 alone writing events."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from localft.atomic import atomic_write_text
from localft.errors import ConfigError, LocalftError, RunError
from localft.events import EventSink, Log
from localft.plan.planner import Plan
from localft.run.folder import RunDir

RANKS_DIR = "ranks"  # run/ranks/rank-R.error: why a rank failed, one line
# torch.distributed.run's failure report lists each failed rank and how it ended, the first
# observed last ("Root Cause").
REPORT = "Failures:"
FAILED_RANK = re.compile(r"rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)")
LOG_TAIL = 256 * 1024  # bytes of train.log read for the launcher's report


def ranks_dir(run: RunDir) -> Path:
    return run.path / RANKS_DIR


def run_group(run: RunDir, plan: Plan, backend_name: str, stop: Callable[[], bool]) -> None:
    """Start the backend's launcher for `plan.world_size` processes and wait for it; a stop request
    seen here is passed on as the stop file (rank 0 polls it). Raises RunError for a dead rank."""
    from localft.backends import get_backend

    backend = get_backend(backend_name)
    launch = getattr(backend, "launch_command", None)
    if launch is None:
        raise ConfigError(f"backend {backend_name!r} trains on one process; leave out --nproc")
    for old in ranks_dir(run).glob("rank-*.error"):
        old.unlink()
    hosts = Path(plan.hosts) if plan.hosts else None
    log_start = run.log_path.stat().st_size if run.log_path.exists() else 0
    command = launch(run.path.resolve(), plan.world_size, hosts)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_end_with_parent())
    try:
        while child.poll() is None:
            if stop() and not run.stop_path.exists():
                atomic_write_text(run.stop_path, "stop\n")
            time.sleep(0.2)
    finally:
        if child.poll() is None:  # this worker is going away: take the group with it
            child.send_signal(signal.SIGTERM)
            child.wait()
    if child.returncode != 0:
        raise RunError(dead_rank_message(run, child.returncode, log_start))


def _end_with_parent():
    """Linux: the launcher gets SIGTERM if this worker dies (even by kill -9), and ends its ranks,
    so no rank trains on unwatched. Elsewhere None (the worker's own exit path ends the group)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    def set_parent_death_signal() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_parent_death_signal


def dead_rank_message(run: RunDir, code: int, log_start: int = 0) -> str:
    """One line: which rank failed first and how (its own error where it wrote one), and the log."""
    rank, exit_code = _root_cause(run, log_start)
    resume = f"`localft runs resume {run.id}` continues from the last checkpoint"
    killed = exit_code is not None and exit_code < 0 and exit_code != -signal.SIGTERM
    # Unless a rank was killed (which writes nothing), the first rank to write its error is the
    # cause: the others failed on losing it, and the launcher may list them in any order.
    reports = sorted(ranks_dir(run).glob("rank-*.error"), key=lambda path: path.stat().st_mtime_ns)
    if reports and not killed:
        rank = int(reports[0].stem.split("-")[1])
    error_file = ranks_dir(run) / f"rank-{rank}.error"
    if rank is not None and error_file.exists():
        why = error_file.read_text(encoding="utf-8").strip()
        return f"rank {rank} failed: {why}"
    if rank is not None:
        how = f"was killed by {signal.Signals(-exit_code).name}" if exit_code and exit_code < 0 else (
            f"exited with code {exit_code}")  # fmt: skip
        return f"training process rank {rank} {how}; the other ranks were stopped (log: {run.log_path}); {resume}"
    return f"the training processes' launcher exited with code {code} (log: {run.log_path}); {resume}"


def _root_cause(run: RunDir, log_start: int) -> tuple[int | None, int | None]:
    try:
        with open(run.log_path, "rb") as f:
            f.seek(max(log_start, f.seek(0, os.SEEK_END) - LOG_TAIL))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None, None
    if REPORT not in text:
        return None, None
    failed = [(int(r), int(c)) for r, c in FAILED_RANK.findall(text[text.rindex(REPORT) :])]
    # A rank killed by a signal (not the launcher's SIGTERM) is the cause: the others failed on
    # losing it, perhaps seen first.
    killed = [f for f in failed if f[1] < 0 and f[1] != -signal.SIGTERM]
    return (killed or failed or [(None, None)])[-1 if not killed else 0]


def run_rank(run: RunDir, plan: Plan, backend_name: str | None) -> int:
    """One rank of the group: train this rank's shard; rank 0 writes the events (but not Finished:
    the run's worker does, once the whole group ended). A failure is written to the rank's error
    file for the run's worker to report. No signal handlers: the launcher's SIGTERM ends a rank."""
    from localft.backends import get_backend
    from localft.disk import user_os_error
    from localft.run.stop import StopFlag
    from localft.train import train
    from localft.train.world import World

    world = World.from_env()
    sink = EventSink(run.events_path) if world.is_writer else None
    emit = sink if sink is not None else (lambda event: None)
    error_file = ranks_dir(run) / f"rank-{world.rank}.error"

    def stalled(why: str) -> None:  # from the watch's thread, while this rank waits in C
        atomic_write_text(error_file, why + "\n")
        print(f"rank {world.rank}: {why}", file=sys.stderr, flush=True)
        os._exit(1)  # the launcher ends the other ranks; the run's worker reports this file

    try:
        backend = get_backend(backend_name or plan.backend)
        train(run, plan, emit, StopFlag(run.stop_path), backend=backend, stalled=stalled)
    except Exception as exc:
        user_error = exc if isinstance(exc, LocalftError) else user_os_error(exc)
        if user_error is None:
            traceback.print_exc()
            why = f"{type(exc).__name__}: {exc} (see {run.log_path})"
        else:
            why = str(user_error)
            emit(Log(f"rank {world.rank}: {why}", level="error"))
        atomic_write_text(error_file, why.splitlines()[0] + "\n")
        return 2 if user_error is not None else 1
    finally:
        if sink is not None:
            sink.close()
    return 0
