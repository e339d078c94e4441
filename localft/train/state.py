"""What a run's loop carries from step to step and stores in every checkpoint, and the two
functions of the step number both backends share: the learning rate and the step's RNG seed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from localft.config import TrainSpec

# Names older checkpoints used for the same counters (torch's and MLX's loops had their own).
OLD_NAMES = {"rows": "position", "batch_size": "micro_batch", "evals_since_best": "evals_without_improvement"}


@dataclass
class LoopState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    step: int = 0
    position: int = 0  # training rows consumed (the data position)
    tokens: int = 0  # real (non-padding) tokens trained so far
    trained_tokens: int = 0  # tokens that carried loss
    train_seconds: float = 0.0
    micro_batch: int = 0  # rows per forward pass, halved on out-of-memory (0: the plan's)
    best_val_loss: float | None = None  # the validation measure (a round: minus its held-out reward)
    best_step: int | None = None
    evals_without_improvement: int = 0
    last_val_loss: float | None = None
    stopped_early: bool = False  # a resumed run does not train past early stopping
    world_size: int = 1  # processes that trained it: a resume continues with as many

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LoopState:
        known = {f.name for f in fields(cls)}
        renamed = {OLD_NAMES.get(k, k): v for k, v in data.items()}
        return cls(**{k: v for k, v in renamed.items() if k in known})


def learning_rate(spec: TrainSpec, total_steps: int, step: int) -> float:
    """The rate of optimizer step `step` (0-based): linear warm-up to the peak, then cosine or
    linear decay to zero at `total_steps`, or constant."""
    peak, warm = spec.learning_rate, spec.warmup_steps
    if step < warm:
        return peak * (step + 1) / warm
    progress = min(max((step - warm) / max(total_steps - warm, 1), 0.0), 1.0)
    if spec.schedule == "cosine":
        return peak * 0.5 * (1 + math.cos(math.pi * progress))
    if spec.schedule == "linear":
        return peak * (1 - progress)
    return peak


def step_seed(seed: int, step: int) -> int:
    """The framework RNG's seed for optimizer step `step` (LoRA dropout): a function of the step,
    so a resumed run draws the same masks without storing RNG state."""
    return seed * 1_000_003 + step
