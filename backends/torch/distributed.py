"""torch.distributed for the training loop: the launch command (torch.distributed.run), joining
its process group (gloo on CPU, nccl on CUDA), DDP or FSDP2 `fully_shard` around the model's loss,
sums over ranks, and full state dicts gathered for rank 0 to write."""

from __future__ import annotations

import sys
from pathlib import Path

from localft.errors import ConfigError
from localft.run.folder import WORKER_MODULE
from localft.train.world import RANK_WORKER_FLAG, World

TRAINABLE_FILE = "trainable.pt"  # FSDP: the trainable weights' full state dict (model key names)
WRAPPED_PREFIX = "model."  # what the loss wrapper adds to the model's key names


def launch_command(run_dir: Path, world_size: int, hosts: Path | None) -> list[str]:
    """torch's own launcher, one machine: one rank worker per device (rendezvous on a free port)."""
    if hosts is not None:
        raise ConfigError("torch trains several processes on one machine; --hosts is for MLX, use --nproc")
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world_size}",
        "--max-restarts=0", "-m", WORKER_MODULE, str(run_dir), RANK_WORKER_FLAG,
    ]  # fmt: skip


BACKSTOP_S = 60  # torch's own collective timeout fires this long after localft's watch would


def join_group(device: str, sharded: bool, timeout_s: float = 600.0) -> World:
    """This process's world; the process group is joined when there are several processes, or
    for FSDP on one (fully_shard needs a mesh). A collective that waits past `timeout_s` is
    localft.train.watchdog's to report; gloo's and nccl's timeout is the backstop behind it."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    world = World.from_env()
    if dist.is_initialized() or not (world.several or sharded):
        return world
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(world.local_rank)
    if world.several:
        timeout = timedelta(seconds=timeout_s + BACKSTOP_S)
        dist.init_process_group(
            backend, timeout=timeout
        )  # env:// — the launcher's MASTER_ADDR/PORT, RANK, WORLD_SIZE
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return world


def all_reduce_sum(values: list[float], device: str) -> list[float]:
    import torch
    import torch.distributed as dist

    sums = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    return sums.tolist()


def loss_module(model, device: str, liger: bool):
    """The model's loss as a module's forward: DDP and FSDP act on a module's forward and backward
    (the loss calls the decoder and the head apart, so the model's own forward is never run)."""
    import torch

    from .loss import token_loss_sum

    class TokenLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch):
            return token_loss_sum(self.model, batch, device, liger)

    return TokenLoss()


def wrap(model, world: World, device: str, sharding: str, liger: bool):
    """DDP (every rank holds the model; gradients averaged in backward) or FSDP2 (each decoder
    layer, then the rest, sharded over a device mesh; gradients reduce-scattered, i.e. averaged)."""
    import torch

    module = loss_module(model, device, liger)
    if sharding == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device, (world.size,))
        uniform_dtype(model)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        for layer in base.get_decoder().layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    ids = [world.local_rank] if device == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def uniform_dtype(model) -> None:
    """FSDP2 gathers each group's parameters in one dtype: adapters that peft keeps in fp32 beside
    a bf16 (or 4-bit stored as bf16) base are cast to the base's dtype. Untested here (no GPU)."""
    frozen = [p.dtype for p in model.parameters() if not p.requires_grad and p.is_floating_point()]
    if not frozen:
        return
    target = max(set(frozen), key=frozen.count)
    for p in model.parameters():
        if p.requires_grad and p.dtype != target:
            p.data = p.data.to(target)


def full_state_dict(module, trainable_only: bool) -> dict:
    """The model's full (unsharded) weights on the CPU, key names as the bare model's; a collective:
    every rank calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    names = {n for n, p in module.named_parameters() if p.requires_grad} if trainable_only else None
    return {k.removeprefix(WRAPPED_PREFIX): v for k, v in state.items() if names is None or k in names}


def full_optimizer_state(module, optimizer) -> dict:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(module, optimizer, options=options)


def load_full_state(module, optimizer, folder: Path) -> None:
    """A sharded run's checkpoint (full state dicts, read by every rank) into the shards."""
    import torch
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    from .device import OPTIMIZER_FILE

    options = StateDictOptions(full_state_dict=True, strict=False)
    weights = torch.load(Path(folder) / TRAINABLE_FILE, map_location="cpu", weights_only=True)
    set_model_state_dict(module, {WRAPPED_PREFIX + k: v for k, v in weights.items()}, options=options)
    state = torch.load(Path(folder) / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    set_optimizer_state_dict(module, optimizer, optim_state_dict=state, options=options)
