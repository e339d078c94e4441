"""The preference losses (DPO, IPO, ORPO, SimPO, KTO), written once over per-sequence log-probs
in a tiny array namespace (`ArrayOps`) that torch and MLX both satisfy; a backend supplies only the
log-probs (summed over each completion's trained tokens) and its namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

METHODS = ("sft", "dpo", "ipo", "orpo", "simpo", "kto")
PREFERENCE_METHODS = METHODS[1:]
PAIRED_METHODS = ("dpo", "ipo", "orpo", "simpo")  # KTO takes good/bad completions one at a time
# Methods that compare against a frozen reference policy (the starting adapter, or the base).
REFERENCE_METHODS = frozenset({"dpo", "ipo", "kto"})
# The usual beta of each method (SimPO's paper: 2.0-2.5; the others: TRL's defaults).
DEFAULT_BETA = {"dpo": 0.1, "ipo": 0.1, "orpo": 0.1, "simpo": 2.0, "kto": 0.1}
SIMPO_GAMMA = 0.5  # SimPO's target reward margin (gamma; the loss uses gamma / beta)


class ArrayOps(Protocol):
    """What the losses need beyond arithmetic operators and `.mean()`/`.sum()` on arrays."""

    def log_sigmoid(self, x: Any) -> Any: ...
    def sigmoid(self, x: Any) -> Any: ...
    def log1mexp(self, x: Any) -> Any: ...  # log(1 - exp(x)) for x < 0, stable
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def clip_min(self, x: Any, low: float) -> Any: ...
    def clip_max(self, x: Any, high: float) -> Any: ...
    def exp(self, x: Any) -> Any: ...
    def stop_gradient(self, x: Any) -> Any: ...
    def asarray(self, values: Any, like: Any) -> Any: ...  # numbers as an array beside `like`


class NumpyOps:
    """The losses on plain numbers: validation and reward accuracy need no framework."""

    @staticmethod
    def log_sigmoid(x):
        import numpy as np

        return -np.logaddexp(0.0, -x)

    @staticmethod
    def sigmoid(x):
        import numpy as np

        return 1.0 / (1.0 + np.exp(-x))

    @staticmethod
    def log1mexp(x):
        import numpy as np

        half = -0.6931471805599453  # each formula only where it is accurate (both are evaluated)
        return np.where(
            x < half, np.log1p(-np.exp(np.minimum(x, half))), np.log(-np.expm1(np.maximum(x, half)))
        )

    @staticmethod
    def where(cond, a, b):
        import numpy as np

        return np.where(cond, a, b)

    @staticmethod
    def clip_min(x, low: float):
        import numpy as np

        return np.maximum(x, low)

    @staticmethod
    def clip_max(x, high: float):
        import numpy as np

        return np.minimum(x, high)

    @staticmethod
    def exp(x):
        import numpy as np

        return np.exp(x)

    @staticmethod
    def stop_gradient(x):
        return x

    @staticmethod
    def asarray(values, like=None):
        import numpy as np

        return np.asarray(values, dtype=np.float64)


@dataclass
class SequenceLogps:
    """Per-sequence log-probabilities of one batch: `chosen`/`rejected` are sums over each
    completion's trained tokens, `*_tokens` their counts (arrays of shape (B,))."""

    chosen: Any
    rejected: Any
    chosen_tokens: Any
    rejected_tokens: Any


@dataclass
class UnpairedLogps:
    """KTO's batch: one completion per example, `desirable` its mark, and the log-probs of the
    mismatched (prompt, other completion) sequences that estimate the KL term."""

    logps: Any
    desirable: Any  # bool array
    kl_logps: Any


@dataclass
class LossParts:
    loss: Any  # scalar
    chosen_rewards: Any  # (B,) without gradient; reward accuracy = share of chosen > rejected
    rejected_rewards: Any


def sequences_per_example(method: str, group_size: int = 1) -> int:
    """Sequences one example puts through the graph with gradients (what the memory estimate
    counts): a pair's two; KTO's mismatched KL sequence runs without gradients, so one; a
    reinforcement request's `group_size` drafts."""
    if method == "grpo":
        return group_size
    return 2 if method in PAIRED_METHODS else 1


def default_beta(method: str, beta: float | None) -> float:
    return DEFAULT_BETA[method] if beta is None else beta


def pair_loss(
    ops: ArrayOps,
    method: str,
    beta: float,
    policy: SequenceLogps,
    reference: SequenceLogps | None = None,
    gamma: float = SIMPO_GAMMA,
) -> LossParts:
    """The mean loss of a batch of pairs for dpo, ipo, orpo or simpo."""
    if method in ("dpo", "ipo"):
        if reference is None:
            raise ValueError(f"{method} needs the reference log-probs")
        chosen_ratio = policy.chosen - ops.stop_gradient(reference.chosen)
        rejected_ratio = policy.rejected - ops.stop_gradient(reference.rejected)
        if method == "dpo":
            loss = -ops.log_sigmoid(beta * (chosen_ratio - rejected_ratio))
        else:  # IPO on per-token log-ratios, as its authors confirmed for TRL
            delta = chosen_ratio / policy.chosen_tokens - rejected_ratio / policy.rejected_tokens
            loss = (delta - 1 / (2 * beta)) ** 2
        return LossParts(
            loss.mean(), ops.stop_gradient(beta * chosen_ratio), ops.stop_gradient(beta * rejected_ratio)
        )
    chosen_avg = policy.chosen / policy.chosen_tokens
    rejected_avg = policy.rejected / policy.rejected_tokens
    rewards = ops.stop_gradient(beta * chosen_avg), ops.stop_gradient(beta * rejected_avg)
    if method == "orpo":
        # Log odds ratio of the mean per-token probabilities, plus the SFT loss on the chosen side.
        log_odds = (chosen_avg - rejected_avg) - (ops.log1mexp(chosen_avg) - ops.log1mexp(rejected_avg))
        nll = -policy.chosen.sum() / policy.chosen_tokens.sum()
        return LossParts(nll - beta * ops.log_sigmoid(log_odds).mean(), *rewards)
    if method == "simpo":
        loss = -ops.log_sigmoid(beta * (chosen_avg - rejected_avg - gamma / beta))
        return LossParts(loss.mean(), *rewards)
    raise ValueError(f"unknown pair method {method!r}")


def kto_loss(
    ops: ArrayOps,
    beta: float,
    policy: UnpairedLogps,
    reference: UnpairedLogps,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> LossParts:
    """KTO's mean loss over good and bad completions; the KL estimate is a constant of the step."""
    kl = ops.clip_min(ops.stop_gradient((policy.kl_logps - reference.kl_logps).mean()), 0.0)
    ratio = policy.logps - ops.stop_gradient(reference.logps)
    good = desirable_weight * (1 - ops.sigmoid(beta * (ratio - kl)))
    bad = undesirable_weight * (1 - ops.sigmoid(beta * (kl - ratio)))
    rewards = ops.stop_gradient(beta * ratio)
    return LossParts(ops.where(policy.desirable > 0.5, good, bad).mean(), rewards, rewards)


def reward_accuracy(chosen_rewards, rejected_rewards) -> float:
    """Share of pairs whose chosen reward beats the rejected one (numbers from either framework)."""
    import numpy as np

    chosen, rejected = np.asarray(chosen_rewards, float), np.asarray(rejected_rewards, float)
    return float((chosen > rejected).mean()) if chosen.size else 0.0
