"""The reinforcement objective (GRPO and its relatives), written once over per-token log-probs in
the preference losses' array namespace (localft.train.preference.ArrayOps): advantages relative
within each request's group of drafts, the clipped policy ratio, an optional KL term to the
starting adapter. A backend supplies only the per-token log-probs of the drafts and its namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# grpo: each draft's tokens averaged, then the drafts; dr_grpo: one constant (drafts x the longest
# allowed draft) so length does not bias the gradient; dapo: the step's draft tokens; gspo: one
# sequence-level ratio per draft (the mean per-token log-ratio), averaged as grpo.
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "gspo")
DEFAULT_LOSS_TYPE = "dapo"  # TRL's default since it showed grpo's length bias
DEFAULT_GROUP_SIZE = 4
MIN_GROUP_SIZE = 2  # one draft has no group to be relative to
# (epsilon low, epsilon high): TRL's defaults for token ratios; the GSPO paper's for its sequence
# ratio, which moves far less than one token's.
CLIP = {"gspo": (3e-4, 4e-4)}
TOKEN_CLIP = (0.2, 0.2)
STD_FLOOR = 1e-4  # TRL's: a group whose drafts all scored alike gets zero advantages, not NaN


def clip_range(loss_type: str, epsilon: float | None = None, epsilon_high: float | None = None):
    """(epsilon low, epsilon high): the method's defaults, `epsilon` for both, `epsilon_high` above."""
    low, high = CLIP.get(loss_type, TOKEN_CLIP)
    if epsilon is not None:
        low = high = epsilon
    return low, high if epsilon_high is None else epsilon_high


def scales_rewards(loss_type: str) -> bool:
    """Dr. GRPO divides by no group spread (it biases toward easy and hopeless requests)."""
    return loss_type != "dr_grpo"


def group_advantages(rewards, group_size: int, scale: bool = True) -> np.ndarray:
    """Each draft's reward minus its group's mean (the G drafts of one request are consecutive),
    divided by the group's standard deviation (unbiased, as TRL's) when `scale`."""
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, group_size)
    centred = r - r.mean(axis=1, keepdims=True)
    if scale and group_size > 1:
        centred = centred / (r.std(axis=1, ddof=1, keepdims=True) + STD_FLOOR)
    return centred.reshape(-1)


@dataclass
class ReinforceParts:
    loss: Any  # scalar
    kl: Any  # mean per-token KL to the reference (no gradient), or None without one
    clipped: Any  # share of draft tokens whose ratio the clip held (no gradient)


def reinforce_loss(
    ops,
    loss_type: str,
    logps: Any,
    mask: Any,
    advantages: Any,
    old_logps: Any | None = None,
    reference_logps: Any | None = None,
    beta: float = 0.0,
    epsilon: float | None = None,
    epsilon_high: float | None = None,
    max_draft_tokens: int | None = None,
    tokens: float | None = None,
) -> ReinforceParts:
    """The loss of a micro-batch of drafts. `logps`, `mask` (1 on draft tokens), `old_logps` and
    `reference_logps` are (N, T); `advantages` (N,). Without `old_logps` the drafts came from this
    very policy (one update per batch of drafts): the ratio is 1 and only its gradient counts.
    dr_grpo needs `max_draft_tokens`; dapo divides by `tokens` (the step's draft tokens) when given,
    else by this micro-batch's."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss type {loss_type!r}")
    low, high = clip_range(loss_type, epsilon, epsilon_high)
    old = ops.stop_gradient(logps) if old_logps is None else ops.stop_gradient(old_logps)
    log_ratio = logps - old
    lengths = ops.clip_min(mask.sum(-1), 1.0)
    if loss_type == "gspo":
        log_ratio = ((log_ratio * mask).sum(-1) / lengths)[:, None]
    ratio = ops.exp(log_ratio)
    clipped_ratio = ops.clip_min(ops.clip_max(ratio, 1 + high), 1 - low)
    adv = advantages[:, None]
    unclipped, held = ratio * adv, clipped_ratio * adv
    per_token = -ops.where(unclipped < held, unclipped, held)
    kl = None
    if beta:
        if reference_logps is None:
            raise ValueError("a KL term (beta > 0) needs the reference log-probs")
        gap = ops.stop_gradient(reference_logps) - logps
        per_token_kl = ops.exp(gap) - gap - 1
        per_token = per_token + beta * per_token_kl
        kl = ops.stop_gradient((per_token_kl * mask).sum() / ops.clip_min(mask.sum(), 1.0))
    masked = per_token * mask
    if loss_type in ("grpo", "gspo"):
        loss = (masked.sum(-1) / lengths).mean()
    elif loss_type == "dr_grpo":
        if not max_draft_tokens:
            raise ValueError("dr_grpo needs max_draft_tokens")
        loss = masked.sum() / (mask.shape[0] * max_draft_tokens)
    else:
        loss = masked.sum() / (tokens if tokens else ops.clip_min(mask.sum(), 1.0))
    outside = ops.where(adv < 0, ratio < 1 - low, ratio > 1 + high) * mask
    clipped = ops.stop_gradient(outside.sum() / ops.clip_min(mask.sum(), 1.0))
    return ReinforceParts(loss, kl, clipped)


def micro_weight(loss_type: str, drafts: int, step_drafts: int) -> float:
    """What a micro-batch's loss counts for in its step: dapo's is already a share of the step's
    tokens; the others average over drafts, so each counts for its share of the step's drafts."""
    return 1.0 if loss_type == "dapo" else drafts / max(step_drafts, 1)
