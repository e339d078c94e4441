"""Terminal progress: the events of a run or a stage (training steps, merge, convert, quantize,
verify, eval, drafting) folded by run_state and drawn as rich bars with elapsed time and ETA,
redrawn in place; plain lines where the output is not a terminal. Ctrl-C stops training gracefully."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from localft.disk import fmt_bytes
from localft.events import Emit, Event, Finished, Stage, Step
from localft.run.folder import RunDir
from localft.run.state import RunState, describe, reward_line, stage_line, throughput

PLAIN_STEP_EVERY = 10  # without a terminal: a line every 10 steps (and the last)
PLAIN_STAGE_SECONDS = 5.0  # ... and a stage's line at most every 5 s (and its end)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Bars:
    """Draws events as they come: one bar for training, one per stage. `show` is an Emit."""

    def __init__(self, world_size: int = 1, console=None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.terminal = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}", markup=False), TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
            console=self.console, transient=False, disable=not self.terminal,
        )  # fmt: skip
        self.state, self.world_size = RunState(), world_size
        self._tasks: dict[str, tuple[int, float | None]] = {}  # name -> (task id, pass start)
        self._printed: dict[str, float] = {}  # stage -> when its last plain line was printed

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def show(self, event: Event) -> None:
        self.state.apply(event)
        if isinstance(event, Step):
            self._step(event)
        elif isinstance(event, Stage):
            self._stage(event)
        line = describe(event)
        if line:
            self.say(line)

    def say(self, line: str) -> None:
        """One line as written: no markup read into it (paths hold brackets), and off a terminal
        never wrapped, so a log or `| tee` keeps one line per message."""
        self.console.print(line, highlight=False, markup=False, soft_wrap=not self.terminal)

    def _task(self, name: str, total: int, started: float | None) -> int:
        known = self._tasks.get(name)
        if known is None:
            task = self.progress.add_task(name, total=total, info="", eta=fmt_duration(None))
        else:
            task = known[0]
            if known[1] != started:  # a new pass of the stage (the next file of an export)
                self.progress.reset(task, total=total)
        self._tasks[name] = (task, started)
        return task

    def _step(self, event: Step) -> None:
        state = self.state
        reward = (
            f"  {reward_line(event.reward, event.reward_std, event.kl)}" if event.reward is not None else ""
        )
        info = f"loss {event.loss:.3f}{reward}  {throughput(event.tok_per_s, self.world_size)}  peak {fmt_bytes(event.peak_mem)}"
        eta = fmt_duration(state.eta_seconds())
        if self.terminal:
            task = self._task("train", event.total, state.started)
            self.progress.update(task, total=event.total, completed=event.step, info=info, eta=eta)
        elif event.step % PLAIN_STEP_EVERY == 0 or event.step == event.total:
            elapsed = fmt_duration(event.time - (state.started or event.time))
            self.say(f"step {event.step}/{event.total} {info}  elapsed {elapsed}  eta {eta}")

    def _stage(self, event: Stage) -> None:
        stage = self.state.stages[event.name]
        eta = fmt_duration(stage.eta_seconds())
        if self.terminal:
            task = self._task(event.name, max(event.total, 1), stage.started)
            self.progress.update(
                task, total=max(event.total, 1), completed=event.done, info=event.detail, eta=eta
            )
            return
        last = self._printed.get(event.name)
        if event.done < event.total and last is not None and event.time - last < PLAIN_STAGE_SECONDS:
            return
        self._printed[event.name] = event.time
        if event.done < event.total:  # the end is describe()'s "<stage>: done" line
            elapsed = fmt_duration(event.time - (stage.started or event.time))
            self.say(f"{stage_line(event)}  elapsed {elapsed}  eta {eta}")


@contextmanager
def stage_bars(console=None) -> Iterator[Emit]:
    """An Emit that draws the stages of a command run in this process (export, eval, drafting)."""
    with Bars(console=console) as bars:
        yield bars.show


def watch_run(run: RunDir, start: int = 0, stop_on_interrupt: bool = True) -> Finished:
    """Show progress until the run finishes; the first Ctrl-C asks the worker to stop (it keeps a
    checkpoint), watching goes on until it has."""
    from localft.plan.planner import read_plan
    from localft.run import runner

    plan = read_plan(run.path)
    finished = None
    stopping = False
    with Bars(plan.world_size if plan else 1) as bars:
        if bars.terminal:
            bars._task("train", 0, None)  # the bar is up before the first step
        follower = runner.EventFollower(run, start)
        events = follower.events()
        while True:
            try:  # a Ctrl-C while an event is drawn is a stop request too, not a detach
                event = next(events)
                if isinstance(event, Finished):
                    finished = event
                bars.show(event)
            except StopIteration:
                break
            except KeyboardInterrupt:
                if not stop_on_interrupt or stopping:
                    raise
                stopping = True
                bars.say("stopping: the worker writes a checkpoint, then exits (Ctrl-C again to detach)")
                runner.stop_worker(run, timeout=0)
                # The interrupt closed the generator: follow on from the offset already read.
                events = follower.events()
    return finished or Finished("failed", error="no result from the worker", time=time.time())
