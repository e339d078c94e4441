"""A backend without a model, for the runner/worker/dashboard tests: its session steps at a steady
pace with a scripted loss under the real training loop (localft.train), so process control, stops,
checkpoints and resume are the real ones. Real training is tested with the real backends."""

from __future__ import annotations

import time
from pathlib import Path

from localft.backends import Availability

STATE_FILE = "scripted.bin"


class ScriptedSession:
    device = "cpu"
    pad_multiple = 1
    step_seconds = 0.05

    def __init__(self, request) -> None:
        self.step = 0  # optimizer steps taken

    def packing_blocker(self) -> str | None:
        return None

    def seed(self, seed: int) -> None:
        pass

    def accumulate(self, batch, scale: float) -> float:
        time.sleep(self.step_seconds)
        return 3.0 / (self.step + 1) ** 0.5 * batch.trained_tokens  # the step's mean loss: 3/sqrt(step)

    def apply_update(self, learning_rate: float) -> None:
        self.step += 1

    def discard_gradients(self) -> None:
        pass

    def eval_loss(self, batch) -> tuple[float, int]:
        n = batch.trained_tokens
        return (3.0 / max(self.step, 1) ** 0.5 + 0.1) * n, n

    def save_adapter(self, folder: Path) -> None:
        (Path(folder) / "adapter.bin").write_bytes(self.step.to_bytes(4, "little") * 256)

    def save_training_state(self, folder: Path) -> None:
        self.save_adapter(folder)
        (Path(folder) / STATE_FILE).write_bytes(self.step.to_bytes(4, "little"))

    def load_training_state(self, folder: Path) -> None:
        # A test may hand-write a checkpoint with only the loop's state.json: the scripted loss then
        # starts again from its first value, which nothing asserts.
        saved = Path(folder) / STATE_FILE
        self.step = int.from_bytes(saved.read_bytes(), "little") if saved.is_file() else 0

    def trainable_bytes(self) -> int:
        return 1024

    def peak_memory(self) -> int:
        return 1 << 20


class ScriptedBackend:
    name = "scripted"

    def check(self) -> Availability:
        return Availability(True, "cpu", "scripted events for tests")

    def load(self, request) -> ScriptedSession:
        return ScriptedSession(request)

    def merge(self, run, out: Path) -> Path:
        raise NotImplementedError("the scripted backend has no weights")
