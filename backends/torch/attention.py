"""Attention over packed rows without a dense mask.

A packed row holds several examples whose position ids restart at 0. Through SDPA transformers
gives such a row a (rows x L x L) block-diagonal mask, which moves SDPA off its flash kernel and
makes every token attend over the whole row. On CUDA, torch's variable-length flash kernel takes the
examples' boundaries instead (cu_seqlens, from the restarting position ids), so a packed row costs
what its examples cost apart."""

from __future__ import annotations

import inspect
from functools import lru_cache

NAME = "localft_varlen"

# Decoders whose attention passes the forward's extra keyword arguments through to the attention
# function, with the standard (batch, heads, length, head_dim) layout.
SUPPORTED_TYPES = {"llama", "mistral", "qwen2", "qwen3"}


@lru_cache(maxsize=1)
def varlen_kernel():
    """torch's varlen flash attention (torch >= 2.10), or None."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def supports(config, device: str, dtype_name: str, packing: bool) -> bool:
    """Packed rows on CUDA in bf16/fp16, for plain causal attention (no sliding window, no
    soft-capping: the kernel call below does neither)."""
    if not (packing and device == "cuda" and dtype_name in ("bf16", "fp16") and varlen_kernel()):
        return False
    sliding = getattr(config, "use_sliding_window", getattr(config, "sliding_window", None) is not None)
    softcap = getattr(config, "attn_logit_softcapping", None)
    return not sliding and not softcap and getattr(config, "model_type", "") in SUPPORTED_TYPES


def register() -> None:
    """Make NAME a valid `attn_implementation`; transformers builds no mask for an unknown name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_attention_forward)


def sequence_bounds(position_ids, device: str = "cpu") -> dict:
    """The kernel's keyword arguments for a batch: every position 0 starts an example (each row
    starts with one, and the padding at a row's end forms its own ignored sequence). Computed from
    the CPU position ids, then copied to `device` once per batch rather than once per layer."""
    import torch

    flat = position_ids.reshape(-1)
    starts = torch.nonzero(flat == 0).flatten()
    cu = torch.cat([starts, torch.tensor([flat.numel()])]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    cu = cu.to(device)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


@lru_cache(maxsize=1)
def _kernel_options() -> tuple[bool, str]:
    """(takes enable_gqa, how it is told to be causal): the signature changed across torch versions."""
    params = inspect.signature(varlen_kernel()).parameters
    return "enable_gqa" in params, "window_size" if "window_size" in params else "is_causal"


def varlen_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, kernel=None, **kwargs
):
    """transformers' attention-function contract: (batch, heads, L, dim) in, (batch, L, heads, dim)
    out. `kernel` replaces torch's CUDA kernel (tests run a reference one on CPU)."""
    cu, longest = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    b, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    q = query.transpose(1, 2).reshape(b * length, heads, dim)
    k = key.transpose(1, 2).reshape(b * length, kv_heads, dim)
    v = value.transpose(1, 2).reshape(b * length, kv_heads, dim)
    options: dict = {"scale": scaling}
    native_gqa = False
    if kernel is None:
        kernel = varlen_kernel()
        native_gqa, causal_flag = _kernel_options()
        options[causal_flag] = (-1, 0) if causal_flag == "window_size" else True
    if kv_heads != heads:
        if native_gqa:
            options["enable_gqa"] = True
        else:
            k, v = (t.repeat_interleave(heads // kv_heads, dim=1) for t in (k, v))
    out = kernel(q, k, v, cu, cu, longest, longest, **options)
    return out.reshape(b, length, heads, dim), None


def reference_varlen(q, k, v, cu_q, cu_k, max_q, max_k, scale=None):
    """The kernel's contract computed one example at a time with SDPA: for tests on CPU."""
    import torch
    import torch.nn.functional as F

    out = torch.empty_like(q)
    bounds = cu_q.tolist()
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        seg = [t[start:end].transpose(0, 1) for t in (q, k, v)]  # (heads, len, dim)
        out[start:end] = F.scaled_dot_product_attention(*seg, is_causal=True, scale=scale).transpose(0, 1)
    return out
