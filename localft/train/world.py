"""Several processes training one run, framework-free: which process this is (`World`), the rows
it trains of each step's global batch, and the per-rank file every checkpoint holds. The
launchers (torch.distributed.run, mlx.launch) start the processes; the backends join them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from localft.errors import RunError

T = TypeVar("T")

# What the launchers set in each process they start: torch.distributed.run (torchrun) and mlx.launch.
TORCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
MLX_ENV = ("MLX_RANK", "MLX_WORLD_SIZE")
RANK_FILE = "rank-{rank}.json"  # one per rank inside every checkpoint folder
RANK_WORKER_FLAG = "--rank-worker"  # `python -m localft.run.worker RUN --rank-worker`: one rank of a group


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes: rank 0 of 1 when it trains alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the device index on this machine

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes events, checkpoints and the adapter."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        """The world a launcher started this process in (torch's, else MLX's variables), or one
        process when none set any."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" in env:
            rank, size = int(env.get("RANK", 0)), int(env["WORLD_SIZE"])
            return cls(rank, size, int(env.get("LOCAL_RANK", rank)))
        if "MLX_RANK" in env:
            rank = int(env["MLX_RANK"])
            size = int(env.get("MLX_WORLD_SIZE", 0)) or _mlx_hostfile_size(env) or rank + 1
            return cls(rank, size, rank)
        return cls()

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of a step's global rows: every size-th one from its rank on, so the
        ranks together train exactly the rows one process would."""
        return list(items[self.rank :: self.size])

    def even_batches(self, items: Sequence[T], micro: int) -> list[tuple[list[T], bool]]:
        """This rank's share of `items` in micro-batches, as many as every other rank runs: under
        DDP or FSDP a forward is a collective, so a rank short of items (fewer validation rows than
        ranks) runs a filler batch whose result is not counted (the bool) rather than leave the
        others waiting in a forward it never joins."""
        mine = self.shard(items)
        most = -(-len(items[:: self.size]) // micro)  # rank 0's share is the largest
        batches = [(mine[i : i + micro], True) for i in range(0, len(mine), micro)]
        return batches + [(list(items[:1]), False)] * (most - len(batches))


def _mlx_hostfile_size(env: Mapping[str, str]) -> int:
    """mlx.launch names a JSON list with one entry per rank: the ring's hosts in MLX_HOSTFILE,
    JACCL's RDMA device matrix in MLX_IBV_DEVICES."""
    path = env.get("MLX_HOSTFILE") or env.get("MLX_IBV_DEVICES")
    try:
        return len(json.loads(Path(path).read_text(encoding="utf-8"))) if path else 0
    except (OSError, ValueError, TypeError):
        return 0


def rank_state(world: World, position: int, rng_seed: int) -> dict:
    """What one rank stores in a checkpoint: its data position and the seed its framework RNG draws
    the next step's masks from (both a pure function of the step, checked on resume)."""
    return {"rank": world.rank, "world_size": world.size, "position": position, "rng_seed": rng_seed}


def rank_seed(step_seed: int, world: World) -> int:
    """Each rank's RNG seed for a step: rank 0 keeps the one-process seed, the others are offset
    so their dropout masks differ."""
    return step_seed + world.rank * (1 << 40)


def check_world_size(saved: int, now: int, run_id: str) -> None:
    """A resume continues with the N the checkpoint was trained with, or is refused."""
    if saved != now:
        nproc = f"--nproc {saved}" if saved > 1 else "one process (no --nproc)"
        raise RunError(
            f"run {run_id} was trained with {saved} process{'es' if saved > 1 else ''} and this attempt "
            f"has {now}; resume it with {nproc}"
        )


def several_process_blocker(method: str, head: bool = False) -> str | None:
    """Why a training method cannot run on several processes, or None."""
    if method != "sft":
        return f"{method} (preference tuning) trains on one process; leave out --nproc"
    if head:
        return "a classification head (--head) trains on one process; leave out --nproc"
    return None


def read_rank_state(folder: Path, world: World) -> dict:
    """This rank's file in a checkpoint folder ({} in a one-process checkpoint)."""
    path = Path(folder) / RANK_FILE.format(rank=world.rank)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
