"""MLX over several processes or Macs: the group mlx.launch started this process in (ring over
TCP, JACCL over Thunderbolt), float sums over ranks and gradient averaging."""

from __future__ import annotations

import os

import mlx.core as mx
import mlx.nn as nn

from localft.errors import BackendUnavailable, RunError
from localft.train.world import World


def launcher_backend(environ=os.environ) -> str:
    """The backend mlx.launch started this process for: JACCL leaves its coordinator's address."""
    return "jaccl" if "MLX_JACCL_COORDINATOR" in environ else "ring"


def join_group(world: World):
    """The global group of a several-process world (None for one process: nothing to talk to)."""
    if not world.several:
        return None
    release_launcher_stdin()
    backend = launcher_backend()
    try:
        group = mx.distributed.init(strict=True, backend=backend)
    except RuntimeError as exc:
        raise BackendUnavailable(
            f"MLX's {backend} backend did not connect the {world.size} processes ({exc})"
        ) from None
    if (group.rank(), group.size()) != (world.rank, world.size):
        raise RunError(
            f"mlx.launch set rank {world.rank} of {world.size} but MLX's {backend} group is rank "
            f"{group.rank()} of {group.size()}; start several processes through localft (--nproc or --hosts)"
        )
    return group


def release_launcher_stdin() -> None:
    """mlx.launch polls each rank's stdin pipe for as long as it stays open (half a core on a
    2-core machine); a rank reads no input, so it swaps the pipe for /dev/null and the launcher's
    next write (localft.backends.mlx.launcher pokes it) finds it closed and stops polling."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def all_reduce_sum(group, values: list[float]) -> list[float]:
    """Each value summed over the ranks, in float64 on the CPU stream (MLX has float64 there only)."""
    if group is None:
        return [float(v) for v in values]
    summed = mx.distributed.all_sum(mx.array(values, dtype=mx.float64), group=group, stream=mx.cpu)
    return [float(v) for v in summed.tolist()]


def average_gradients(group, grads):
    """The gradient tree averaged over the ranks: mlx.nn's all-reduce, 32 MiB of gradients a call."""
    return grads if group is None else nn.average_gradients(grads, group=group)
