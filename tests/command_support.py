"""Run the installed `localft` command as a user does (a real process), and wait on a run's events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from localft.events import Step, read_events
from localft.paths import runs_dir
from localft.run.folder import RunDir

LOCALFT = str(Path(sys.executable).parent / "localft")


def localft(
    *args, env: dict | None = None, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`localft ARGS` in a process of its own, with this test's LOCALFT_HOME (plus `env`), reading
    `input` as typed lines (else nothing)."""
    return subprocess.run(
        [LOCALFT, *map(str, args)], capture_output=True, text=True, timeout=timeout, input=input,
        stdin=subprocess.DEVNULL if input is None else None, env={**os.environ, **(env or {})},
    )  # fmt: skip


def start_localft(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [LOCALFT, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def wait_for(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def only_run() -> RunDir | None:
    runs = sorted(runs_dir().iterdir()) if runs_dir().is_dir() else []
    return RunDir(runs[0]) if len(runs) == 1 else None


def steps_done(run: RunDir) -> int:
    return max((e.step for e in read_events(run.events_path) if isinstance(e, Step)), default=0)


def stop_after_step(run: RunDir, step: int, request, by_file: bool = True) -> None:
    """Pause the worker once it has logged `step`, make the stop `request()`, and let it go on once
    the request is on disk (`by_file`; a signal is queued at once): it stops within a step of
    `step` however fast or slow this machine is."""
    wait_for(lambda: steps_done(run) >= step, what=f"step {step} of {run.id}")
    pid = run.worker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        request()
        if by_file:
            wait_for(
                run.stop_path.exists, timeout=120, what="the stop request"
            )  # a loaded CI machine is slow
    finally:
        os.kill(pid, signal.SIGCONT)


def kill_leftovers(run: RunDir | None, *procs: subprocess.Popen) -> None:
    """End what a failed test left running (the worker is detached, so it would outlive the test)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if run is not None and (pid := run.worker_pid()) is not None:
        from localft.run.folder import worker_running

        if worker_running(run):
            os.kill(pid, signal.SIGKILL)
