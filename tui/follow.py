"""Follow a run's events across every process that writes them: the training worker and, for a
recipe, the recipe process around it (import before training; merge, convert, quantize, eval after)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from localft.events import Event, Finished, RunStarted, read_events, tail_events
from localft.processes import process_alive
from localft.runs import RunDir

RECIPE_PID = "recipe.pid"  # written by the dashboard beside a recipe run it launched
QUIET_S = 30.0  # a run whose events changed this recently counts as live even without a known pid


def recipe_pid(run: RunDir) -> int | None:
    try:
        return int((run.path / RECIPE_PID).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def run_active(run: RunDir) -> bool:
    """Is some process still writing this run's events?"""
    from localft.runner import is_running

    # The recipe process runs `localft.cli ... recipe run`: a reused pid names something else.
    if is_running(run) or process_alive(recipe_pid(run), "localft.cli", "recipe"):
        return True
    try:
        return time.time() - run.events_path.stat().st_mtime < QUIET_S
    except FileNotFoundError:
        return False


def follow_run(run: RunDir, should_stop: Callable[[], bool], poll: float = 0.5) -> Iterator[Event]:
    """Every event of the run, then new ones as they come, until no process writes it any more.
    A training worker that died mid-run gets its Finished(failed), as `runner.follow` does."""
    from localft.runner import mark_dead

    consumed, checked, active = 0, 0.0, True

    def stop_now() -> bool:
        nonlocal checked, active
        if should_stop():
            return True
        if time.monotonic() - checked > 1.0:
            checked, active = time.monotonic(), run_active(run)
        return not active

    while not should_stop():
        # tail_events returns at a Finished at the end of the file; a recipe may append more after.
        for i, event in enumerate(tail_events(Path(run.events_path), follow=True, should_stop=stop_now)):
            if i >= consumed:
                consumed += 1
                yield event
        if should_stop():
            return
        if not run_active(run):
            rest = read_events(run.events_path)[consumed:]
            yield from rest
            if training_unfinished(read_events(run.events_path)) and run.worker_pid() is not None:
                yield mark_dead(run)
            return
        time.sleep(poll)


def training_unfinished(events: list[Event]) -> bool:
    """A RunStarted with no Finished after it: the worker was cut off."""
    last_start = max((i for i, e in enumerate(events) if isinstance(e, RunStarted)), default=None)
    return last_start is not None and not any(isinstance(e, Finished) for e in events[last_start:])
