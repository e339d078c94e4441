"""What a backend gives the training loop: a `Session` over one loaded model with adapters. Only
framework work lives behind it; every decision (order, schedule, when to evaluate, save or stop)
is the loop's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from localft.config import TrainSpec
from localft.events import Emit
from localft.plan.planner import Plan

from .rows import Batch
from .world import World


class OutOfMemory(Exception):
    """A backend's out-of-memory error, in the loop's terms (the loop halves the micro-batch)."""


@dataclass(frozen=True)
class LoadRequest:
    """What a backend needs to build a session: the model folder, the run's settings (LoRA,
    optimizer, seed) and its plan (device, precision, quantization)."""

    model_dir: Path
    spec: TrainSpec
    plan: Plan
    emit: Emit


class Session(Protocol):
    pad_multiple: int  # micro-batch widths are rounded up to this (a compiled step sees few shapes)
    # The processes training together; load() joins them (process group init is the backend's).
    # Several processes: apply_update AVERAGES gradients over ranks before clipping and stepping,
    # and save_adapter / save_training_state are called on every rank (a collective gather may
    # need all of them) but only `world.is_writer` writes files.
    world: World

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Each value summed over the ranks (every rank gets the sums); the values themselves
        for one process."""
        ...

    def packing_blocker(self) -> str | None:
        """Why packed rows cannot be kept apart by this framework for this model, or None."""
        ...

    def seed(self, seed: int) -> None:
        """Seed the framework's random generator (LoRA dropout) before a step."""
        ...

    def accumulate(self, batch: Batch, scale: float) -> float:
        """Forward and backward of one micro-batch; gradients of (summed token loss x `scale`) add
        to those of earlier micro-batches of the step. Returns the summed token loss. Raises
        OutOfMemory for the framework's out-of-memory error."""
        ...

    def apply_update(self, learning_rate: float) -> None:
        """Clip the accumulated gradients, take one optimizer step at `learning_rate`, clear them."""
        ...

    def discard_gradients(self) -> None:
        """Drop the accumulated gradients without an update (a failed or retried step)."""
        ...

    def eval_loss(self, batch: Batch) -> tuple[float, int]:
        """(summed token loss, trained tokens) of a batch, without gradients."""
        ...

    def save_adapter(self, folder: Path) -> None:
        """The adapter in the backend's export format (what `merge` reads)."""
        ...

    def save_training_state(self, folder: Path) -> None:
        """Adapter and optimizer state: what a checkpoint holds besides the loop's counters."""
        ...

    def load_training_state(self, folder: Path) -> None: ...

    # Preference tuning (localft.train.preference_loop).
    def load_adapter(self, folder: Path) -> None:
        """Load a finished run's adapter weights into this session's adapters (same shape)."""
        ...

    def sequence_logps(self, batch: Batch):
        """(summed log-prob of each row's trained tokens, their count) as numpy arrays, without
        gradients."""
        ...

    def accumulate_objective(self, batch: Batch, objective, scale: float, per_token: bool = False) -> float:
        """Forward and backward of a preference micro-batch: `objective(ops, logps, counts)` (the
        core's loss over the rows' log-probs, in the framework's ArrayOps) gives the loss, whose
        gradient x `scale` adds to the step's. With `per_token` (a reinforcement objective) the
        log-probs are per token (rows x positions - 1) and `counts` the mask of trained tokens.
        Returns the loss. Raises OutOfMemory."""
        ...

    # Reinforcement tuning (localft.train.reinforce): drafts from the model being trained.
    def draft(self, prompts: list[list[int]], group_size: int, max_new_tokens: int, seed: int,
              stop_ids: list[int], temperature: float = 1.0) -> list[list[list[int]]]:  # fmt: skip
        """`group_size` sampled completions (token ids, ending at a stop token or the limit) of
        each prompt, seeded: the same weights and seed draft the same tokens. Temperature 0: the
        greedy completion."""
        ...

    def keep_reference(self) -> None:
        """Keep a copy of the trained weights as they are now: the reference policy of a KL term."""
        ...

    def reference_logps(self, batch: Batch):
        """Per-token log-probs (rows x positions - 1, numpy) of the batch's trained tokens under
        the kept reference weights, without gradients; the trained weights are untouched."""
        ...

    def trainable_bytes(self) -> int: ...

    def peak_memory(self) -> int:
        """Bytes: the device's peak allocation, or the process's peak RSS on a CPU."""
        ...
