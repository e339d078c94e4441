"""Several processes: a rank that makes no progress for longer than a bound (waiting in a
collective the other ranks never join, or on a rank that froze) ends the run with one line naming
it and where it waited, instead of hanging. Framework-free: the loop marks its progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .world import World


class CollectiveWatch:
    """A daemon thread that calls `stalled(why)` once when `progress()` was not called for
    `limit_s` seconds; `stalled` must end the process (the main thread is blocked in C)."""

    def __init__(self, world: World, limit_s: float, stalled: Callable[[str], None]) -> None:
        self.world, self.limit_s, self.stalled = world, limit_s, stalled
        self.where, self.last = "start-up", time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="collective-watch", daemon=True)
        self._thread.start()

    def progress(self, where: str) -> None:
        """The rank moved on: it is now at `where` ("step 5", "validation after step 4", ...)."""
        self.where, self.last = where, time.monotonic()

    def close(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        interval = min(self.limit_s / 10, 5.0)
        tick = time.monotonic()
        while not self._done.wait(interval):
            now = time.monotonic()
            slept, tick = now - tick, now
            if slept > 3 * interval + 1:
                # This process (or the machine: a laptop's lid) was suspended; the time it was
                # away is not a collective's, so its clock starts again.
                self.last = now
            if now - self.last > self.limit_s:
                self.stalled(
                    f"no progress for over {self.limit_s:g} s at {self.where} (waiting on the other ranks: a collective "
                    f"they did not join, or a rank that stopped responding); the run was ended. If one step "
                    f"really takes that long, raise --set collective_timeout_s"
                )
                return
