"""The loss of a micro-batch on MLX without the full logits tensor: the body runs on every position,
then the vocabulary projection and cross-entropy run a chunk of positions at a time, each chunk
recomputed in the backward pass (mx.checkpoint) so no chunk's logits outlive it."""

from __future__ import annotations

import contextlib
from functools import partial

import mlx.core as mx
import mlx.nn as nn

from localft.data.chat_tokens import IGNORE
from localft.plan.memory import LOSS_CHUNK_ELEMENTS

from .modeling import language_model, output_head, segment_attention

CHUNK_ELEMENTS = LOSS_CHUNK_ELEMENTS  # a module global, so a test can shrink the chunks


def vocab_size(model: nn.Module) -> int:
    embed = language_model(model).model.embed_tokens
    return int(getattr(embed, "num_embeddings", 0) or embed.weight.shape[0])


def chunked_cross_entropy(
    head, vocab: int, hidden: mx.array, targets: mx.array, weights: mx.array
) -> mx.array:
    """Sum of weights x cross-entropy of `targets` under head(hidden), `hidden` (positions x dim)."""

    def piece(h, t, w):
        return (nn.losses.cross_entropy(head(h).astype(mx.float32), t) * w).sum()

    chunk = max(1, CHUNK_ELEMENTS // vocab)
    total = mx.array(0.0, mx.float32)
    for start in range(0, hidden.shape[0], chunk):
        end = start + chunk
        # Only the hidden states are the checkpoint's input: targets and weights are constants of it.
        recomputed = mx.checkpoint(partial(piece, t=targets[start:end], w=weights[start:end]))
        total = total + recomputed(hidden[start:end])
    return total


def masked_loss(model: nn.Module, inputs, targets, segments, positions=None, packed: bool = False):
    """(summed cross-entropy over trained targets, their count) for shifted inputs/targets. With
    `positions` (flat indices of the trained targets) only those go through the vocabulary
    projection (eager runs: prompts are not trained, so most of that work is skipped)."""
    head = output_head(model)
    context = segment_attention(model, segments) if packed else contextlib.nullcontext()
    mask = targets != IGNORE
    if head is None:  # a model whose output is not known to be body + projection: full logits
        with context:
            logits = model(inputs)
        ce = nn.losses.cross_entropy(logits.astype(mx.float32), mx.where(mask, targets, 0)) * mask
        return ce.sum(), mask.sum()
    with context:
        hidden = model.model(inputs)
    flat = hidden.reshape(-1, hidden.shape[-1])
    flat_targets = targets.reshape(-1)
    if positions is not None:
        picked = flat_targets[positions]
        total = chunked_cross_entropy(
            head, vocab_size(model), flat[positions], picked, mx.ones(picked.shape, mx.float32)
        )
        return total, mx.array(positions.size)
    flat_mask = mask.reshape(-1)
    weights = flat_mask.astype(mx.float32)
    total = chunked_cross_entropy(
        head, vocab_size(model), flat, mx.where(flat_mask, flat_targets, 0), weights
    )
    return total, mask.sum()
