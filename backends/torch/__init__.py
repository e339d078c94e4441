"""The torch backend: transformers + peft LoRA (QLoRA through bitsandbytes NF4) as a session of the
training loop (localft.train), and merge. Importing this does not load torch."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from localft.backends import Availability
from localft.run.folder import RunDir
from localft.train.session import LoadRequest


class TorchBackend:
    name: ClassVar[str] = "torch"

    def check(self) -> Availability:
        import importlib.util

        missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
        if missing:
            return Availability(False, "", f"{', '.join(missing)} not installed; pip install 'localft[cuda]'")
        import torch

        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            many = f" (x{count})" if count > 1 else ""
            return Availability(True, "cuda", f"CUDA: {torch.cuda.get_device_name(0)}{many}", count)
        if torch.backends.mps.is_available():
            return Availability(True, "mps", "Apple GPU through MPS")
        return Availability(True, "cpu", f"CPU, {torch.get_num_threads()} threads (slow, small models)")

    def load(self, request: LoadRequest):
        from .session import TorchSession

        return TorchSession(request)

    def load_classifier(self, request: LoadRequest, labels: list[str], pad_id: int):
        """A session over AutoModelForSequenceClassification with LoRA and a trainable head (--head)."""
        from .head import ClassifierSession

        return ClassifierSession(request, labels, pad_id)

    def merge(self, run: RunDir, out: Path) -> Path:
        from .merge import merge

        return merge(run, out)

    def launch_command(self, run_dir: Path, world_size: int, hosts: Path | None) -> list[str]:
        from .distributed import launch_command

        return launch_command(run_dir, world_size, hosts)


__all__ = ["TorchBackend"]
