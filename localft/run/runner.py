"""Start, stop, resume and follow training workers; the CLI, the dashboard and the recipes share it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_text
from localft.config import TrainSpec
from localft.errors import RunError
from localft.events import Emit, Event, EventSink, Finished, Log, RunStarted, events_with_offsets, read_events
from localft.run.folder import (
    WORKER_MODULE,
    RunDir,
    discard_unstarted,
    new_run,
    run_status,
    run_writing,
    worker_running,
)
from localft.run.processes import detached, interrupt

# Popen objects of workers this process started, so they are reaped and can be waited on.
_children: dict[int, subprocess.Popen] = {}


def prepare_run(
    spec: TrainSpec,
    source: Path | list[Path] | None,
    name: str | None = None,
    root: Path | None = None,
    emit: Emit | None = None,
    machine=None,
) -> RunDir:
    """Create a run: plan it (a backend that cannot run here or a model that cannot fit is refused
    before anything is written), record the spec, import `source` (one input or several, merged)
    into run/data/, and plan it again on that data (plan.json). A failed import or plan leaves no
    run behind (the sources are only read)."""
    from localft.plan.hardware import this_machine
    from localft.plan.planner import check_plan, plan

    machine = machine or this_machine()
    first = check_plan(plan(spec, machine))
    run = new_run(spec.model_copy(update={"backend": first.backend}), name=name, root=root)
    if source is not None:
        try:
            import_data(run, spec, source, emit=emit)
            plan_imported(run, machine, emit)
        except BaseException:
            discard_unstarted(run)
            raise
    return run


def plan_imported(run: RunDir, machine=None, emit: Emit | None = None):
    """Plan a run on its imported data and record the plan, in plan.json and as log lines."""
    from localft.plan.planner import describe, plan_run

    p = plan_run(run, machine)
    with EventSink(run.events_path) as sink:
        for line in describe(p):
            event = Log(f"plan: {line}")
            sink(event)
            if emit:
                emit(event)
    return p


def launch_run(
    spec: TrainSpec,
    source: Path | list[Path],
    name: str | None = None,
    root: Path | None = None,
    emit: Emit | None = None,
    machine=None,
) -> RunDir:
    """`prepare_run`, then start its worker; a run whose worker cannot start is removed again, so a
    failed `train` never leaves an empty run in `localft runs`."""
    run = prepare_run(spec, source, name=name, root=root, emit=emit, machine=machine)
    try:
        start_worker(run)
    except BaseException:
        discard_unstarted(run)
        raise
    return run


def import_data(run: RunDir, spec: TrainSpec, source: Path | list[Path], emit: Emit | None = None):
    """Import `source` into the run's data folder with token statistics from the run's model."""
    from localft.data.dataset import build_dataset
    from localft.plan.catalog import resolve_model

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


@dataclass(frozen=True)
class Preview:
    data: object  # localft.plan.planner.TrainingData: what the plan sizes the steps from
    report: object | None  # localft.data.report.DataReport (None where a recipe imports itself)


def preview_data(spec: TrainSpec, source: Path | list[Path], prepare=None) -> Preview:
    """Import `source` as a run of `spec` would, into a scratch folder that is removed again: the
    data report and the training data a plan is sized from, before any run exists (`--plan`, the
    dashboard's form). `prepare` is a recipe's own importer (localft.recipes.base.PrepareData)."""
    import tempfile

    from localft.plan.planner import training_data

    with tempfile.TemporaryDirectory(prefix="localft-preview-") as tmp:
        run = RunDir(Path(tmp))
        run.write_spec(spec)
        if prepare is not None:
            prepare(Path(source) if not isinstance(source, list) else source[0], run, lambda _e: None)
            report = None
        else:
            report = import_data(run, spec, source)
        return Preview(training_data(run.split_path("train"), spec), report)


is_running = worker_running  # the one liveness rule lives in localft.run.folder (run_status needs it too)


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


@dataclass(frozen=True)
class Resumed:
    start: int  # byte offset of events.jsonl before the new worker: follow from here
    checkpoint: Path | None  # where it continues from (None: the start)
    skipped: list  # newer checkpoints that did not verify (localft.run.checkpoints.Damaged)


def resume_run(run: RunDir, backend: str | None = None, env: dict | None = None) -> Resumed:
    """Continue a stopped or crashed run from its newest checkpoint that verifies, on its stored
    plan: the one set of resume rules, for `runs resume` and the dashboard alike."""
    from localft.plan.planner import read_plan
    from localft.run.checkpoints import find_resume_checkpoint

    if not run.spec_path.is_file():
        raise RunError(f"{run.path} is not a run (no spec.json)")
    if is_running(run):
        history = read_events(run.events_path)
        # A worker that just wrote Finished may still be exiting: let it go first.
        if not (history and isinstance(history[-1], Finished) and wait_worker(run, timeout=60)):
            raise RunError(f"run {run.id} is already training (pid {run.worker_pid()}); stop it first")
    if run_status(run).status == "completed":
        raise RunError(
            f"run {run.id} has already completed; nothing to resume (export it: `localft export {run.id}`)"
        )
    if not run.split_path("train").is_file():
        raise RunError(f"run {run.id} has no training data; start a new run instead")
    if read_plan(run.path) is None:  # a run from before plans were stored
        plan_imported(run)
    usable, damaged = find_resume_checkpoint(run)  # the worker makes the same choice
    start = events_size(run)
    start_worker(run, backend=backend, env=env)
    return Resumed(start, usable, damaged)


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


class EventFollower:
    """Follows a run's events.jsonl by byte offset: each event is read once, and `offset` is
    always just past the last event handed out, so a follower can stop and start again.

    `whole_run=False` (the CLI watching training): ends at training's Finished, or when the
    worker is gone. `whole_run=True` (the dashboard): goes on while any process writes the run
    (a recipe appends export and eval stages after training). A worker that died without its
    Finished (kill -9, the out-of-memory killer) gets a Finished(failed) appended, so every reader
    sees the same end."""

    def __init__(self, run: RunDir, start: int = 0, *, whole_run: bool = False, poll: float = 0.2):
        self.run, self.offset, self.whole_run, self.poll = run, start, whole_run, poll
        self.last: Event | None = None
        self.training_open = False

    def events(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        checked = time.monotonic()
        while True:
            before = self.offset
            yield from self._read()
            if self.offset != before:
                continue
            if should_stop() or (not self.whole_run and isinstance(self.last, Finished)):
                return
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                if not (run_writing(self.run) if self.whole_run else is_running(self.run)):
                    yield from self._read()  # what the writers wrote last
                    cut_off = self.training_open or not (self.whole_run or isinstance(self.last, Finished))
                    if cut_off and self.run.worker_pid() is not None:
                        yield mark_dead(self.run)
                    return
            time.sleep(self.poll)

    def _read(self) -> Iterator[Event]:
        """The new events; `offset` moves past each as it is handed out."""
        for event, end in events_with_offsets(self.run.events_path, self.offset):
            if isinstance(event, RunStarted):
                self.training_open = True
            elif isinstance(event, Finished):
                self.training_open = False
            self.offset, self.last = end, event
            yield event

    __iter__ = events


def follow(run: RunDir, start: int = 0, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
    """Training's events from byte `start` until its Finished (see EventFollower)."""
    return EventFollower(run, start).events(should_stop)


def mark_dead(run: RunDir) -> Finished:
    """Record that the worker died without finishing; its checkpoints stay for `runs resume`."""
    from localft.run.checkpoints import find_resume_checkpoint, resume_hint

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
