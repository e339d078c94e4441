"""The torch backend: transformers + peft LoRA (QLoRA through bitsandbytes NF4), resumable, with merge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from localft.backends import Availability
from localft.config import TrainSpec
from localft.events import Emit
from localft.runs import RunDir


class TorchBackend:
    name: ClassVar[str] = "torch"

    def check(self) -> Availability:
        import importlib.util

        missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
        if missing:
            return Availability(False, "", f"{', '.join(missing)} not installed; pip install 'localft[cuda]'")
        import torch

        if torch.cuda.is_available():
            return Availability(True, "cuda", f"CUDA: {torch.cuda.get_device_name(0)}")
        if torch.backends.mps.is_available():
            return Availability(True, "mps", "Apple GPU through MPS")
        return Availability(True, "cpu", f"CPU, {torch.get_num_threads()} threads (slow, small models)")

    def train(self, spec: TrainSpec, run: RunDir, emit: Emit, stop: Callable[[], bool]) -> None:
        from .loop import train

        train(spec, run, emit, stop)

    def merge(self, run: RunDir, out: Path) -> Path:
        from .merge import merge

        return merge(run, out)


__all__ = ["TorchBackend"]
