"""Checkpoints and adapters on disk: peft adapter files, optimizer/scheduler/RNG state and the loop's
counters, written into a temporary folder and renamed, with state.json (and its integrity record,
localft.checkpoints) written last."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from localft.checkpoints import read_state, write_state
from localft.runs import atomic_dir, atomic_write_json

ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class LoopState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    step: int = 0
    position: int = 0  # training rows consumed (the data position)
    tokens: int = 0  # real tokens trained so far
    batch_size: int = 1
    grad_accum: int = 1
    best_val_loss: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    last_val_loss: float | None = None
    stopped_early: bool = False  # a resumed run does not train past early stopping


def save_adapter(model, out: Path) -> None:
    """A PEFT adapter folder (adapter_config.json + adapter_model.safetensors), atomically."""
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)


def rng_state() -> tuple[dict, dict]:
    """(tensors, plain values): torch generators as uint8 tensors, python and numpy as JSON."""
    import numpy as np
    import torch

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {"python": [version, list(words), gauss], "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    return tensors, plain


def set_rng_state(tensors: dict, plain: dict) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    version, words, gauss = plain["python"]
    random.setstate((version, tuple(words), gauss))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def trainable_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def save_checkpoint(path: Path, model, optimizer, scheduler, state: LoopState) -> None:
    import torch
    from safetensors.torch import save_file

    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        tensors, plain = rng_state()
        save_file(tensors, tmp / "rng.safetensors")
        atomic_write_json(tmp / "rng.json", plain)
        write_state(tmp, asdict(state))  # last: marks the folder complete


def load_checkpoint(path: Path, model, optimizer, scheduler) -> LoopState:
    """Restore adapter weights, optimizer, schedule and RNG from `path`; return the loop counters."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    device = next(p.device for p in model.parameters() if p.requires_grad)
    set_peft_model_state_dict(model, load_file(path / ADAPTER_WEIGHTS, device=str(device)))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    set_rng_state(load_file(path / "rng.safetensors"), json.loads((path / "rng.json").read_text()))
    return LoopState(**read_state(path))
