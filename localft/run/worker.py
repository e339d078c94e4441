"""The training worker: `python -m localft.run.worker RUN_DIR [--backend NAME]`.

Runs the training loop (localft.train) on the run's plan in its own process, so closing the CLI or the dashboard never stops
training. Its stdout/stderr go to the run's train.log; it writes the Finished event itself. A stop
request is the run's stop file (every OS) or SIGINT/SIGTERM (POSIX). A plan for several processes
is trained by the backend's launcher, started as this worker's child (localft.run.rank_group).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from localft.atomic import atomic_write_text
from localft.errors import LocalftError
from localft.events import Eval, EventSink, Finished, Log, RunStarted, Step, read_events
from localft.plan.planner import Plan
from localft.run.folder import RunDir, run_status
from localft.run.stop import StopFlag


class Tracker:
    """Wraps the sink to remember the last step and the best validation for Finished: the lowest
    loss, or in a reinforcement round the highest held-out reward (what its loop keeps)."""

    def __init__(self, sink: EventSink, step: int = 0) -> None:
        self.sink, self.step, self.best = sink, step, None

    def __call__(self, event) -> None:
        self.note(event)
        self.sink(event)

    def note(self, event) -> None:
        if isinstance(event, RunStarted):
            self.step = event.resumed_from
        elif isinstance(event, Step):
            self.step = event.step
        elif isinstance(event, Eval) and (self.best is None or event.measure < self.best.measure):
            self.best = event

    def finished(self, status: str, error: str | None = None) -> Finished:
        best = self.best
        if best is None:
            return Finished(status, self.step, error=error)
        return Finished(status, self.step, best.step, best.val_loss, error, best_reward=best.reward)


def run_plan(run: RunDir) -> Plan:
    """The plan the run was created with (plan.json); a run made without one (older code, or a test
    that writes only spec.json) is planned now on its imported data, once, and the plan stored."""
    from localft.plan.planner import plan_run, read_plan

    return read_plan(run.path) or plan_run(run)


def run_scorer(run: RunDir):
    """A reinforcement round's rewards (localft.eval.rewards), built here: train/ may not import
    eval/. None for every other method."""
    spec = run.read_spec()
    if spec.method != "grpo":
        return None
    from localft.eval.rewards import RowScorer

    return RowScorer.for_run(run, spec)


def run_worker(run: RunDir, backend_name: str | None = None) -> int:
    from localft.backends import get_backend
    from localft.disk import user_os_error
    from localft.train import train

    stop = StopFlag(run.stop_path)
    signal.signal(signal.SIGINT, stop.request)
    signal.signal(signal.SIGTERM, stop.request)
    atomic_write_text(run.pid_path, f"{os.getpid()}\n")
    with EventSink(run.events_path) as sink:
        emit = Tracker(sink, step=run_status(run).step)  # a resume that fails at once ends where it was
        try:
            # A backend named on the command line (a plug-in) trains the same plan; an unknown name
            # is the first thing said.
            backend = get_backend(backend_name) if backend_name else None
            plan = run_plan(run)
            if backend_name:
                plan = replace(plan, backend=backend_name)
            if plan.world_size > 1:
                from localft.run.rank_group import run_group

                events_before = len(read_events(run.events_path)) if run.events_path.exists() else 0
                try:
                    run_group(run, plan, plan.backend, stop)
                finally:  # rank 0 wrote the steps: Finished reports where they ended
                    for event in read_events(run.events_path)[events_before:]:
                        emit.note(event)
            else:
                train(run, plan, emit, stop, backend=backend, scorer=run_scorer(run))
        except Exception as exc:
            user_error = exc if isinstance(exc, LocalftError) else user_os_error(exc)
            if user_error is None:  # a bug: keep the traceback in train.log, tell the reader in one line
                traceback.print_exc()
                sink(emit.finished("failed", f"{type(exc).__name__}: {exc} (see {run.log_path})"))
                return 1
            emit(Log(str(user_error), level="error"))
            sink(emit.finished("failed", str(user_error)))
            return 2
        finally:
            run.stop_path.unlink(missing_ok=True)
        sink(emit.finished("stopped" if stop() else "completed"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localft.run.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--rank-worker", action="store_true", help="one rank of a several-process run")
    args = parser.parse_args(argv)
    from localft.library_logs import route_library_output

    route_library_output(sys.stderr)  # the run's train.log: each library warning once, no tqdm bars
    if args.rank_worker:
        from localft.run.rank_group import run_rank

        run = RunDir(args.run_dir)
        code = run_rank(run, run_plan(run), args.backend)
        sys.stdout.flush()
        sys.stderr.flush()
        # Everything is written and closed; the interpreter's teardown (torch's, mainly) takes
        # 5-12 s under load, and the run's Finished waits for the last rank to exit.
        os._exit(code)
    code = run_worker(RunDir(args.run_dir), args.backend)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
