"""torch on the plan's device: threads, peak memory, out-of-memory as the core's error, autocast
and evaluation mode. What the session, the preference objective and several processes share."""

from __future__ import annotations

import contextlib
import os
import sys

from localft.train.session import OutOfMemory

from .modeling import Placement, torch_dtype

OPTIMIZER_FILE = "optimizer.pt"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def set_threads(processes: int = 1) -> None:
    """One thread per physical core (hyper-threads only contend for the same FMA units), shared
    among the processes training together on this machine."""
    import psutil
    import torch

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    with contextlib.suppress(AttributeError):
        cores = min(cores, len(os.sched_getaffinity(0)))
    torch.set_num_threads(max(cores // processes, 1))


def peak_memory(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    if device == "mps":
        return int(torch.mps.driver_allocated_memory())
    if sys.platform == "win32":  # no `resource` module; psutil reads the peak working set
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def is_oom(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory, or the CPU allocator refusing an allocation."""
    import torch

    text = str(exc).lower()
    return (
        isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text
    )


@contextlib.contextmanager
def oom_as_core_error():
    """The framework's out-of-memory error raised as the core's OutOfMemory; others pass."""
    try:
        yield
    except Exception as exc:
        if not is_oom(exc):
            raise
        raise OutOfMemory(str(exc).splitlines()[0]) from None


@contextlib.contextmanager
def evaluating(session):
    """A forward without gradients in eval mode (dropout off), back in train mode after."""
    import torch

    session.model.eval()
    try:
        with oom_as_core_error(), torch.no_grad(), autocast(session.where):
            yield
    finally:
        session.model.train()


def autocast(where: Placement):
    import torch

    if where.device == "cpu" or where.dtype_name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(where.device, dtype=torch_dtype(where.dtype_name))
