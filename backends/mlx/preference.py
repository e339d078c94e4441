"""The MLX side of preference tuning: the array namespace the core's losses run in, and the
per-sequence log-probabilities of a batch's completions (summed over their trained tokens)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from localft.data.chat_tokens import IGNORE

LOG_HALF = -0.6931471805599453


class MlxOps:
    sigmoid = staticmethod(mx.sigmoid)
    where = staticmethod(mx.where)
    stop_gradient = staticmethod(mx.stop_gradient)
    exp = staticmethod(mx.exp)

    @staticmethod
    def log_sigmoid(x):
        return -mx.logaddexp(mx.zeros_like(x), -x)

    @staticmethod
    def log1mexp(x):
        # mx.where evaluates both sides: keep each formula's input inside its own safe range.
        low = mx.minimum(x, LOG_HALF)
        high = mx.maximum(x, LOG_HALF)
        return mx.where(x < LOG_HALF, mx.log1p(-mx.exp(low)), mx.log(-mx.expm1(high)))

    @staticmethod
    def clip_min(x, low: float):
        return mx.maximum(x, low)

    @staticmethod
    def clip_max(x, high: float):
        return mx.minimum(x, high)

    @staticmethod
    def asarray(values, like=None):
        return mx.array(values)


OPS = MlxOps()


def token_logps(model: nn.Module, input_ids, labels):
    """(log-prob of each trained next token, 1.0 where one is trained), both (B, T - 1), for
    right-padded numpy arrays (B, T); labels are IGNORE where no log-prob is taken (padding comes
    after every real token, so the causal mask keeps it out)."""
    inputs = mx.array(input_ids[:, :-1], mx.int32)
    targets = mx.array(labels[:, 1:], mx.int32)
    mask = (targets != IGNORE).astype(mx.float32)
    logits = model(inputs).astype(mx.float32)
    return -nn.losses.cross_entropy(logits, mx.where(mask > 0, targets, 0)) * mask, mask


def sequence_logps(model: nn.Module, input_ids, labels):
    """(summed log-prob of each row's trained tokens, their count)."""
    logps, mask = token_logps(model, input_ids, labels)
    return logps.sum(axis=1), mask.sum(axis=1)


def no_grad_logps(session, batch):
    """(log-probs, token counts) of each row as numpy arrays: the reference, or validation."""
    import numpy as np

    session.model.eval()
    try:
        sums, counts = sequence_logps(session.model, batch.input_ids, batch.labels)
        mx.eval(sums, counts)
    finally:
        session.model.train()
    return np.array(sums, dtype=np.float64), np.array(counts, dtype=np.float64)


def accumulate_objective(session, batch, objective, scale: float, per_token: bool = False) -> float:
    """Gradients of the core's `objective` over the micro-batch's log-probs (per sequence, or per
    token with `per_token`), x `scale`, added to the step's. Returns the loss."""
    from mlx.utils import tree_map

    logps_of = token_logps if per_token else sequence_logps

    def loss_of(model):
        return objective(OPS, *logps_of(model, batch.input_ids, batch.labels)).loss

    loss, grads = nn.value_and_grad(session.model, loss_of)(session.model)
    grads = tree_map(lambda g: g * scale, grads)
    session.grads = grads if session.grads is None else tree_map(mx.add, session.grads, grads)
    mx.eval(session.grads, loss)
    return loss.item()


def keep_reference(session) -> None:
    """The trained weights as they are now (a round's start, before any checkpoint's), kept as the
    reference policy of a KL term. MLX arrays are immutable and an update replaces them, so holding
    the tree is the copy (its memory is its own once the first update lands)."""
    session.reference = session.model.trainable_parameters()


def reference_token_logps(session, batch):
    """Per-token log-probs (rows x positions - 1, numpy) of a batch under the kept reference
    weights, without gradients; the trained weights are put back after."""
    import numpy as np

    current = session.model.trainable_parameters()
    session.model.update(session.reference)
    session.model.eval()
    try:
        logps, _ = token_logps(session.model, batch.input_ids, batch.labels)
        mx.eval(logps)
    finally:
        session.model.update(current)
        session.model.train()
    return np.array(logps, dtype=np.float64)


def draft(session, prompts: list[list[int]], group_size: int, max_new_tokens: int, seed: int,
          stop_ids: list[int], temperature: float = 1.0) -> list[list[list[int]]]:  # fmt: skip
    """`group_size` sampled completions of each prompt (token ids, up to and including the first
    stop token) by the training model as it is now, through mlx-lm's generation with its KV
    cache; seeded per draft, so the same weights and seed draft the same tokens."""
    import importlib

    from mlx_lm.sample_utils import make_sampler

    generate_step = importlib.import_module(
        "mlx_lm.generate"
    ).generate_step  # the package re-exports a function of that name
    sampler, stops, out = make_sampler(temp=temperature), set(stop_ids), []
    session.model.eval()
    try:
        for i, prompt in enumerate(prompts):
            group = []
            for j in range(group_size):
                mx.random.seed(seed * 1_000_003 + i * group_size + j)
                tokens = []
                for token, _ in generate_step(
                    mx.array(prompt), session.model, max_tokens=max_new_tokens, sampler=sampler
                ):
                    tokens.append(int(token))
                    if tokens[-1] in stops:
                        break
                group.append(tokens)
            out.append(group)
    finally:
        session.model.train()
    return out
