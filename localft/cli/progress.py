"""Terminal progress for a run: follows its events with a rich progress bar; Ctrl-C stops gracefully."""

from __future__ import annotations

import sys

from localft.disk import fmt_bytes
from localft.events import Finished, Step
from localft.run.folder import RunDir
from localft.run.state import describe, throughput


def watch_run(run: RunDir, start: int = 0, stop_on_interrupt: bool = True) -> Finished:
    """Show progress until the run finishes; the first Ctrl-C asks the worker to stop (it keeps a
    checkpoint), watching goes on until it has."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from localft.plan.planner import read_plan
    from localft.run import runner

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=False, disable=not console.is_terminal,
    )  # fmt: skip
    task = progress.add_task("train", total=None, info="starting…")
    plan = read_plan(run.path)
    world_size = plan.world_size if plan else 1
    finished = None
    stopping = False
    with progress:
        follower = runner.EventFollower(run, start)
        events = follower.events()
        while True:
            try:
                event = next(events)
            except StopIteration:
                break
            except KeyboardInterrupt:
                if not stop_on_interrupt or stopping:
                    raise
                stopping = True
                console.print("stopping: the worker writes a checkpoint, then exits (Ctrl-C again to detach)")
                runner.stop_worker(run, timeout=0)
                # The interrupt closed the generator: follow on from the offset already shown.
                events = follower.events()
                continue
            if isinstance(event, Step):
                info = f"loss {event.loss:.3f}  {throughput(event.tok_per_s, world_size)}  peak {fmt_bytes(event.peak_mem)}"
                progress.update(task, total=event.total, completed=event.step, info=info)
                if not console.is_terminal and event.step % 10 == 0:
                    print(f"step {event.step}/{event.total} {info}", file=sys.stderr)
            line = describe(event)
            if line:
                console.print(line)
            if isinstance(event, Finished):
                finished = event
    return finished or Finished("failed", error="no result from the worker")
