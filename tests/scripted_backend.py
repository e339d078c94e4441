"""A backend that emits scripted events at a steady pace: lets the runner/worker/dashboard tests
exercise process control without a model. Real training is tested with the real backends."""

from __future__ import annotations

import time
from pathlib import Path

from localft.backends import Availability
from localft.checkpoints import read_state, resume_checkpoint, write_state
from localft.events import Checkpoint, Eval, RunStarted, Step
from localft.runs import atomic_dir


class ScriptedBackend:
    name = "scripted"
    step_seconds = 0.05

    def check(self) -> Availability:
        return Availability(True, "cpu", "scripted events for tests")

    def train(self, spec, run, emit, stop) -> None:
        ckpt = resume_checkpoint(run, emit)
        start = read_state(ckpt)["step"] if ckpt else 0
        emit(RunStarted(run.id, self.name, spec.model, "cpu", spec.steps, resumed_from=start))
        for step in range(start + 1, spec.steps + 1):
            time.sleep(self.step_seconds)
            loss = 3.0 / step**0.5
            emit(Step(step, spec.steps, loss, spec.learning_rate, step * 100, 2000.0, 1 << 20))
            if step % spec.eval_every == 0:
                emit(Eval(step, loss + 0.1))
            if step % spec.save_every == 0 or stop() or step == spec.steps:
                self._save(run, step)
                emit(Checkpoint(step, str(run.checkpoint_path(step))))
            if stop():
                return

    def _save(self, run, step: int) -> None:
        with atomic_dir(run.checkpoint_path(step)) as tmp:
            (tmp / "adapter.bin").write_bytes(step.to_bytes(4, "little") * 256)
            write_state(tmp, {"step": step})

    def merge(self, run, out: Path) -> Path:
        raise NotImplementedError("the scripted backend has no weights")
