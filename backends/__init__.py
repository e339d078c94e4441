"""The Backend protocol and a registry that maps names to modules without importing them. A backend
is framework glue: it checks whether it can run, loads a model with adapters as a session of the
one training loop (localft.train), and merges an adapter into its base."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from localft.config import TrainSpec
from localft.errors import BackendUnavailable
from localft.run.folder import RunDir

if TYPE_CHECKING:
    from localft.train.session import LoadRequest, Session

HEAD_ON_TORCH = "a classification head trains on the torch backend; use --backend torch"


@dataclass(frozen=True)
class Availability:
    ok: bool
    device: str  # "cuda", "mps", "cpu", "gpu" (MLX Metal), or "" when not available
    reason: str  # why not, or a short description of what it will use
    devices: int = 1  # devices of that kind a several-process run can use (GPUs; a CPU counts as 1)


class Backend(Protocol):
    name: ClassVar[str]

    def check(self) -> Availability: ...

    def load(self, request: LoadRequest) -> Session: ...

    def merge(self, run: RunDir, out: Path) -> Path: ...

    # Several processes (optional: a backend without it trains on one process). The command the
    # run's worker starts as its child for `world_size` processes (over `hosts`, a host-list file,
    # where the framework spans machines); it must start `python -m localft.run.worker RUN_DIR
    # --rank-worker` (localft.train.world.RANK_WORKER_FLAG) once per rank, with the launcher's
    # rank variables set (localft.train.world.World.from_env reads them).
    def launch_command(self, run_dir: Path, world_size: int, hosts: Path | None) -> list[str]: ...


# name -> "module:Class"; importing happens in get_backend only.
REGISTRY: dict[str, str] = {
    "torch": "localft.backends.torch:TorchBackend",
    "mlx": "localft.backends.mlx:MlxBackend",
}


def registry() -> dict[str, str]:
    """REGISTRY plus extra backends named in $LOCALFT_BACKENDS ("name=module:Class;..."),
    which is how a third-party backend (or the tests' scripted one) plugs in."""
    extra = {}
    for item in os.environ.get("LOCALFT_BACKENDS", "").split(";"):
        name, _, ref = item.partition("=")
        if name.strip() and ":" in ref:
            extra[name.strip()] = ref.strip()
    return {**REGISTRY, **extra}


def get_backend(name: str) -> Backend:
    known = registry()
    if name not in known:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(known)}")
    module, cls = known[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        extra = "mlx" if name == "mlx" else "cuda"
        raise BackendUnavailable(
            f"backend {name!r} is not installed ({exc.name or exc}); pip install 'localft[{extra}]'"
        ) from None
    return getattr(mod, cls)()


def check_all() -> dict[str, Availability]:
    """Availability of every registered backend, from its own `check()`: the one probe of what can
    train here (a CPU-only torch on a machine with an NVIDIA GPU says "cpu", not "cuda")."""
    result = {}
    for name in registry():
        try:
            result[name] = get_backend(name).check()
        except BackendUnavailable as exc:
            result[name] = Availability(False, "", str(exc))
    return result


def pick_backend(spec: TrainSpec, avail: dict[str, Availability] | None = None) -> str:
    """The backend a spec runs on: the one asked for, else MLX on Apple silicon, else torch."""
    avail = check_all() if avail is None else avail
    if spec.head and spec.backend == "mlx":
        raise BackendUnavailable(HEAD_ON_TORCH)
    if spec.backend != "auto":
        a = avail.get(spec.backend)
        if a is None or not a.ok:
            why = a.reason if a else "not installed"
            raise BackendUnavailable(f"backend {spec.backend!r} cannot run here: {why}")
        return spec.backend
    mlx = avail.get("mlx")
    order = ("mlx", "torch") if mlx and mlx.device == "gpu" else ("torch", "mlx")
    for name in ("torch",) if spec.head else order:
        if name in avail and avail[name].ok:
            return name
    reasons = "; ".join(f"{n}: {a.reason}" for n, a in avail.items())
    raise BackendUnavailable(f"no training backend can run here ({reasons})")
