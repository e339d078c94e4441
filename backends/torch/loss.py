"""The loss of a micro-batch without the full logits tensor: the decoder runs on every position, then
the vocabulary projection and cross-entropy run on the trained positions only, a chunk of positions
at a time, with each chunk's gradient taken at once (no chunk's logits outlive it). On CUDA with
Liger-Kernel installed its fused linear cross-entropy does the same in Triton."""

from __future__ import annotations

import importlib.util
import os

from localft.data.chat_tokens import IGNORE
from localft.plan.memory import LOSS_CHUNK_ELEMENTS

from . import attention

CHUNK_ELEMENTS = LOSS_CHUNK_ELEMENTS  # a module global, so a test can shrink the chunks


def liger_available(device: str) -> bool:
    """Liger-Kernel runs on CUDA only (Triton); LOCALFT_LIGER=0 turns it off."""
    if device != "cuda" or os.environ.get("LOCALFT_LIGER", "1") == "0":
        return False
    if importlib.util.find_spec("liger_kernel") is None:
        return False
    try:  # a release without these entry points leaves the plain path
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy  # noqa: F401
        from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance  # noqa: F401
    except ImportError:
        return False
    return True


def apply_liger_kernels(model) -> None:
    """Liger's RMSNorm, RoPE and SwiGLU on a loaded (not yet peft-wrapped) model, where Liger knows
    its architecture (it leaves others as they are); the loss stays ours (below)."""
    from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(
        model=model,
        rope=True,
        rms_norm=True,
        swiglu=True,
        cross_entropy=False,
        fused_linear_cross_entropy=False,
    )


def _chunked_function():
    import torch

    class ChunkedLinearCrossEntropy(torch.autograd.Function):
        """Summed cross-entropy of `targets` under `hidden @ weight.T (+ bias)`, soft-capped like
        Gemma's final logits when `softcap` is set. The gradient of each chunk is taken in the forward
        pass (softmax minus one-hot, through the cap), so backward only scales what is stored: the
        hidden-state gradient (positions x hidden) and, for a trainable head, the weight's."""

        @staticmethod
        def forward(ctx, hidden, weight, bias, targets, softcap, chunk, want_grads):
            n = hidden.shape[0]
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad_hidden = torch.empty_like(hidden) if want_grads and hidden.requires_grad else None
            grad_weight = (
                torch.zeros_like(weight, dtype=torch.float32) if want_grads and weight.requires_grad else None
            )
            for start in range(0, n, chunk):
                h, t = hidden[start : start + chunk], targets[start : start + chunk]
                logits = torch.nn.functional.linear(h, weight, bias).float()
                capped = None
                if softcap:
                    capped = torch.tanh(logits / softcap)
                    logits = capped * softcap
                lse = torch.logsumexp(logits, dim=-1)
                total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
                if grad_hidden is None and grad_weight is None:
                    continue
                grad = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
                grad[torch.arange(len(t), device=t.device), t] -= 1
                if capped is not None:
                    grad *= 1 - capped * capped
                if grad_hidden is not None:
                    grad_hidden[start : start + chunk] = grad.to(weight.dtype) @ weight
                if grad_weight is not None:
                    grad_weight += grad.t() @ h.float()
            ctx.save_for_backward(grad_hidden, grad_weight)
            return total

        @staticmethod
        def backward(ctx, grad_output):
            grad_hidden, grad_weight = ctx.saved_tensors
            scale = grad_output.float()
            dh = None if grad_hidden is None else grad_hidden * scale.to(grad_hidden.dtype)
            dw = None if grad_weight is None else grad_weight * scale
            return dh, dw, None, None, None, None, None

    return ChunkedLinearCrossEntropy


_FUNCTION = None


def linear_cross_entropy(
    hidden, weight, bias, targets, softcap: float | None = None, use_liger: bool = False
):
    """Summed token cross-entropy of `targets` given final hidden states (positions x hidden) and the
    output layer's weight (vocabulary x hidden), never holding more than a chunk of logits."""
    import torch

    global _FUNCTION
    if use_liger:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        return liger_fused_linear_cross_entropy(
            hidden, weight, targets, bias, reduction="sum", softcap=softcap
        )
    if _FUNCTION is None:
        _FUNCTION = _chunked_function()
    chunk = max(1, CHUNK_ELEMENTS // weight.shape[0])
    want_grads = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    return _FUNCTION.apply(hidden, weight, bias, targets, softcap, chunk, want_grads)


def final_softcap(model) -> float | None:
    cfg = model.config
    return getattr(cfg, "final_logit_softcapping", None) or getattr(
        getattr(cfg, "text_config", None), "final_logit_softcapping", None
    )


def _projected_loss(head, picked, targets, cap, use_liger: bool):
    """Summed cross-entropy of `targets` through the output layer (chunked where it is linear)."""
    import torch

    if type(head) is not torch.nn.Linear:
        logits = head(picked).float()
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    return linear_cross_entropy(picked, head.weight, head.bias, targets, cap, use_liger)


def _trained_hidden(model, batch, device: str):
    """The decoder over every position of a micro-batch (a localft.train Batch): (base model, the
    final hidden states of positions whose next token is trained, the mask of those positions
    (rows x positions - 1), their target tokens)."""
    import torch

    ids = torch.from_numpy(batch.input_ids).to(device)
    pos = torch.from_numpy(batch.position_ids).to(device)
    labels = torch.from_numpy(batch.labels).to(device)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # attention_mask=None + restarting position_ids: transformers builds a per-example causal mask,
    # or, with the varlen kernel, the examples' bounds go to the kernel instead.
    extra = {}
    if getattr(base.config, "_attn_implementation", None) == attention.NAME:
        extra = attention.sequence_bounds(pos.cpu(), device)
    out = base.get_decoder()(input_ids=ids, position_ids=pos, use_cache=False, **extra)
    targets = labels[:, 1:]
    keep = targets != IGNORE
    return base, out.last_hidden_state[:, :-1][keep], keep, targets[keep]


def token_loss_sum(model, batch, device: str, use_liger: bool = False, per_row: bool = False):
    """(sum of token cross-entropies, number of trained tokens) for one micro-batch (a
    localft.train Batch). The decoder runs on every position, the vocabulary projection only on
    positions whose next token is trained (prompts are not), in chunks. With `per_row`, both are
    tensors with one value per row (a preference pair's sequences)."""
    import torch

    base, picked, keep, targets = _trained_hidden(model, batch, device)
    head = base.get_output_embeddings()
    cap = final_softcap(base)
    if per_row:
        rows = torch.arange(keep.shape[0], device=device)[:, None].expand_as(keep)[keep]
        sums = [
            _projected_loss(head, picked[rows == r], targets[rows == r], cap, use_liger)
            for r in range(keep.shape[0])
        ]
        return torch.stack(sums), keep.sum(dim=1)
    if type(head) is not torch.nn.Linear:  # an adapted or unusual head: project through the module itself
        logits = head(picked).float()
        if cap:
            logits = torch.tanh(logits / cap) * cap
        loss_sum = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    else:
        loss_sum = linear_cross_entropy(picked, head.weight, head.bias, targets, cap, use_liger)
    return loss_sum, int(keep.sum())


def _chunk_logps(hidden, targets, head, cap):
    import torch

    logits = head(hidden).float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.log_softmax(-1).gather(1, targets[:, None]).squeeze(1)


def token_logps(model, batch, device: str):
    """(log-prob of each trained next token, 1.0 where one is trained), both rows x (positions - 1),
    zeros elsewhere: what a token-level objective (localft.train.reinforce) needs. The projection
    runs a chunk of positions at a time and is recomputed in backward, so no chunk's logits are
    kept for the gradient."""
    import torch
    from torch.utils.checkpoint import checkpoint

    base, picked, keep, targets = _trained_hidden(model, batch, device)
    head, cap = base.get_output_embeddings(), final_softcap(base)
    chunk = max(1, CHUNK_ELEMENTS // head.weight.shape[0])
    parts = [
        checkpoint(
            _chunk_logps, picked[i : i + chunk], targets[i : i + chunk], head, cap, use_reentrant=False
        )
        for i in range(0, picked.shape[0], chunk)
    ]
    values = torch.cat(parts) if parts else picked.new_zeros(0, dtype=torch.float32)
    logps = torch.zeros(keep.shape, dtype=torch.float32, device=keep.device).masked_scatter(keep, values)
    return logps, keep.float()
