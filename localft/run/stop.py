"""A run's stop request as the training loop polls it: the stop file a face writes, or a signal."""

from __future__ import annotations

from pathlib import Path


class StopFlag:
    """True once the run's stop file exists or SIGINT/SIGTERM arrived; the backend polls it between
    steps and checkpoints before returning."""

    def __init__(self, stop_file: Path) -> None:
        self.stop_file, self.requested = stop_file, False

    def __call__(self) -> bool:
        self.requested = self.requested or self.stop_file.exists()
        return self.requested

    def request(self, signum, frame) -> None:
        self.requested = True
