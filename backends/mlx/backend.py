"""The MLX backend: LoRA/DoRA/QLoRA on mlx-lm as a session of the training loop (localft.train),
and fusing into an HF folder. mlx is imported inside the methods, so listing backends never loads it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from localft.backends import Availability
from localft.runs import RunDir
from localft.train.session import LoadRequest


class MlxBackend:
    name: ClassVar[str] = "mlx"

    def check(self) -> Availability:
        from localft.hardware import backend_availability

        return backend_availability()["mlx"]

    def load(self, request: LoadRequest):
        from localft.backends.mlx.session import MlxSession

        return MlxSession(request)

    def merge(self, run: RunDir, out: Path) -> Path:
        from localft.backends.mlx.fuse import fuse_run

        return fuse_run(run, Path(out))
