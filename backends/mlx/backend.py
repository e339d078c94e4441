"""The MLX backend: LoRA/DoRA/QLoRA on mlx-lm as a session of the training loop (localft.train),
and fusing into an HF folder. mlx is imported inside the methods, so listing backends never loads it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from localft.backends import Availability
from localft.run.folder import RunDir
from localft.train.session import LoadRequest


class MlxBackend:
    name: ClassVar[str] = "mlx"

    def check(self) -> Availability:
        """Whether mlx and mlx-lm import here, and whether MLX sees a Metal GPU (cheap: no model)."""
        import importlib.util

        from localft.plan.hardware import is_apple_silicon

        if importlib.util.find_spec("mlx") is None or importlib.util.find_spec("mlx_lm") is None:
            hint = "pip install 'localft[mlx]'" + ("" if is_apple_silicon() else " (mlx[cpu] on Linux)")
            return Availability(False, "", f"mlx or mlx-lm missing: {hint}")
        try:
            import mlx.core as mx
        except (ImportError, OSError) as exc:
            return Availability(False, "", f"mlx does not load here: {exc}")
        if mx.metal.is_available():
            return Availability(True, "gpu", "MLX on Apple silicon (Metal)")
        return Availability(True, "cpu", "MLX on CPU (mlx[cpu]; slow, for small models)")

    def load(self, request: LoadRequest):
        from localft.backends.mlx.session import MlxSession

        return MlxSession(request)

    def launch_command(self, run_dir: Path, world_size: int, hosts: Path | None) -> list[str]:
        """mlx.launch starting one rank worker per process here, or per host of `hosts`."""
        from localft.backends.mlx.launcher import launch_command
        from localft.train.world import RANK_WORKER_FLAG

        return launch_command(["-m", "localft.run.worker", str(run_dir), RANK_WORKER_FLAG], world_size, hosts)

    def merge(self, run: RunDir, out: Path) -> Path:
        from localft.backends.mlx.fuse import fuse_run

        return fuse_run(run, Path(out))
