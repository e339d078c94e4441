"""Start, stop, resume and follow training workers; the CLI, the dashboard and the recipes share it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from localft.config import TrainSpec
from localft.errors import RunError
from localft.events import Emit, Event, EventSink, Finished, tail_events
from localft.processes import detached, interrupt
from localft.runs import (
    WORKER_MODULE,
    RunDir,
    atomic_write_text,
    discard_unstarted,
    new_run,
    run_status,
    worker_running,
)

# Popen objects of workers this process started, so they are reaped and can be waited on.
_children: dict[int, subprocess.Popen] = {}


def prepare_run(
    spec: TrainSpec,
    source: Path | list[Path] | None,
    name: str | None = None,
    root: Path | None = None,
    emit: Emit | None = None,
) -> RunDir:
    """Create a run: pick the backend, record the spec, and import `source` (one input or several,
    merged) into run/data/. A failed import leaves no run behind (the sources are only read)."""
    from localft.backends import pick_backend

    spec = spec.model_copy(update={"backend": pick_backend(spec)})
    run = new_run(spec, name=name, root=root)
    if source is not None:
        try:
            import_data(run, spec, source, emit=emit)
        except BaseException:
            discard_unstarted(run)
            raise
    return run


def launch_run(
    spec: TrainSpec,
    source: Path | list[Path],
    name: str | None = None,
    root: Path | None = None,
    emit: Emit | None = None,
) -> RunDir:
    """`prepare_run`, then start its worker; a run whose worker cannot start is removed again, so a
    failed `train` never leaves an empty run in `localft runs`."""
    run = prepare_run(spec, source, name=name, root=root, emit=emit)
    try:
        start_worker(run)
    except BaseException:
        discard_unstarted(run)
        raise
    return run


def import_data(run: RunDir, spec: TrainSpec, source: Path | list[Path], emit: Emit | None = None):
    """Import `source` into the run's data folder with token statistics from the run's model."""
    from localft.data.dataset import build_dataset
    from localft.models import resolve_model

    with EventSink(run.events_path) as sink:

        def both(event: Event) -> None:
            sink(event)
            if emit:
                emit(event)

        report = build_dataset(
            source, spec.data, run.data_dir,
            tokenizer_dir=resolve_model(spec.model), max_seq_len=spec.max_seq_len, train_on=spec.train_on,
            emit=both,
        )  # fmt: skip
    run.mark_stage("import", {"source": report.source})
    return report


is_running = worker_running  # the one liveness rule lives in localft.runs (run_status needs it too)


def start_worker(run: RunDir, backend: str | None = None, env: dict | None = None) -> int:
    """Spawn the worker detached from this terminal (closing the CLI/TUI leaves it training)."""
    if is_running(run):
        raise RunError(f"run {run.id} is already training (pid {run.worker_pid()}); stop it first")
    cmd = [sys.executable, "-m", WORKER_MODULE, str(run.path.resolve())]
    if backend:
        cmd += ["--backend", backend]
    run.path.mkdir(parents=True, exist_ok=True)
    run.stop_path.unlink(missing_ok=True)  # a request left from an earlier attempt
    with open(run.log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, **detached(),
        )  # fmt: skip
    _children[proc.pid] = proc
    atomic_write_text(run.pid_path, f"{proc.pid}\n")
    return proc.pid


def resume_worker(run: RunDir, backend: str | None = None, env: dict | None = None) -> int:
    """Continue a stopped or crashed run from its newest checkpoint that verifies."""
    if not run.spec_path.is_file():
        raise RunError(f"{run.path} is not a run (no spec.json)")
    if run_status(run).status == "completed":
        raise RunError(
            f"run {run.id} has already completed; nothing to resume (export it: `localft export {run.id}`)"
        )
    if not run.split_path("train").is_file():
        raise RunError(f"run {run.id} has no training data; start a new run instead")
    return start_worker(run, backend=backend, env=env)


def stop_worker(run: RunDir, timeout: float = 60.0, signal_too: bool = True) -> bool:
    """Ask the worker to stop (it checkpoints and exits); True once it is gone. The request is the
    run's stop file, which works on every OS; on POSIX a SIGINT goes along (`signal_too`)."""
    pid = run.worker_pid()
    if not is_running(run):
        return True
    atomic_write_text(run.stop_path, f"requested by pid {os.getpid()}\n")
    if signal_too:
        interrupt(pid)
    return wait_worker(run, timeout)


def wait_worker(run: RunDir, timeout: float | None = None) -> bool:
    """Wait for the worker to exit; True if it did within `timeout`."""
    pid = run.worker_pid()
    if pid in _children:
        try:
            _children[pid].wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        _children.pop(pid, None)
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    while pid is not None and is_running(run):
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def worker_exit_code(run: RunDir) -> int | None:
    proc = _children.get(run.worker_pid() or -1)
    return None if proc is None else proc.poll()


def follow(run: RunDir, start: int = 0, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
    """Events of a run as they arrive, until Finished; if the worker dies without one (kill -9,
    out-of-memory kill), a Finished(failed) is appended so every reader sees the same end."""
    alive_checked = time.monotonic()

    def stop_now() -> bool:
        nonlocal alive_checked
        if should_stop():
            return True
        if time.monotonic() - alive_checked > 1.0:
            alive_checked = time.monotonic()
            return not is_running(run)
        return False

    last = None
    for event in tail_events(run.events_path, follow=True, should_stop=stop_now, start=start):
        last = event
        yield event
    if should_stop() or isinstance(last, Finished):
        return
    # The worker is gone: read what it wrote last, then record the death if it wrote no end.
    tail = list(tail_events(run.events_path, follow=False, start=start))
    rest = tail[tail.index(last) + 1 :] if last in tail else tail
    yield from rest
    if not any(isinstance(e, Finished) for e in rest):
        yield mark_dead(run)


def mark_dead(run: RunDir) -> Finished:
    """Record that the worker died without finishing; its checkpoints stay for `runs resume`."""
    from localft.checkpoints import find_resume_checkpoint, resume_hint

    usable, _ = find_resume_checkpoint(run, hashes=False)
    hint = resume_hint(run, "failed", usable) or "no usable checkpoint was written"
    event = Finished("failed", error=f"the training worker died unexpectedly; {hint}")
    with EventSink(run.events_path) as sink:
        sink(event)
    return event


def events_size(run: RunDir) -> int:
    """Byte offset of the end of events.jsonl: follow(run, start=...) from here sees only new events."""
    try:
        return run.events_path.stat().st_size
    except FileNotFoundError:
        return 0
