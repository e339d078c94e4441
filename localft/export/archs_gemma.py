"""GGUF descriptions of Gemma 2, Gemma 3 (text) and Gemma 4 (text, with per-layer embeddings)."""

from __future__ import annotations

import gguf
import numpy as np

from localft.errors import ExportError
from localft.export.archs import (
    ArchDescription,
    _common_params,
    _rope_scaling,
    head_dim,
    register,
    rope_params,
)
from localft.plan.model_shapes import head_dim as layer_head_dim
from localft.plan.model_shapes import kv_shared, layer_types


def _gemma_norm_fix(name: str, data: np.ndarray, c: dict) -> np.ndarray:
    # Gemma 2/3's RMSNorm multiplies by (1 + weight); llama.cpp multiplies by weight.
    return data + 1.0 if name.endswith("norm.weight") else data


def _local_rope(w: gguf.GGUFWriter, c: dict) -> None:
    """Sliding-window blocks rotate with their own base (10000 in Gemma 3 and 4)."""
    rope = c.get("rope_parameters") or {}
    if "sliding_attention" in rope:
        w.add_rope_freq_base_swa(rope["sliding_attention"].get("rope_theta", 10000.0))
    elif c.get("rope_local_base_freq"):
        w.add_rope_freq_base_swa(c["rope_local_base_freq"])


def _gemma2_params(w: gguf.GGUFWriter, c: dict) -> None:
    _common_params(w, c)
    w.add_key_length(head_dim(c))
    w.add_value_length(head_dim(c))
    w.add_attn_logit_softcapping(c.get("attn_logit_softcapping") or 50.0)
    w.add_final_logit_softcapping(c.get("final_logit_softcapping") or 30.0)
    w.add_sliding_window(c["sliding_window"])


def _gemma3_params(w: gguf.GGUFWriter, c: dict) -> None:
    _common_params(w, c)
    w.add_key_length(head_dim(c))
    w.add_value_length(head_dim(c))
    w.add_rope_freq_base(rope_params(c, "full_attention").get("rope_theta", 1_000_000.0))
    _local_rope(w, c)
    if c.get("final_logit_softcapping"):
        w.add_final_logit_softcapping(c["final_logit_softcapping"])
    if c.get("sliding_window"):
        w.add_sliding_window(c["sliding_window"])
        w.add_sliding_window_pattern([t == "sliding_attention" for t in layer_types(c)])
    _rope_scaling(w, rope_params(c, "full_attention"))


GEMMA2 = register(
    ArchDescription(
        ("Gemma2ForCausalLM",), gguf.MODEL_ARCH.GEMMA2, _gemma2_params, _gemma_norm_fix, always_tied=True
    )
)
GEMMA3 = register(
    ArchDescription(
        ("Gemma3ForCausalLM",), gguf.MODEL_ARCH.GEMMA3, _gemma3_params, _gemma_norm_fix, always_tied=True
    )
)

# --- gemma4 ------------------------------------------------------------------------------------


def _full_layer(c: dict) -> int:
    return layer_types(c).index("full_attention")


def _gemma4_check(c: dict) -> None:
    shared = c.get("num_kv_shared_layers") or 0
    if shared:
        # Shared blocks reuse the last unshared block of their kind; llama.cpp takes those to be
        # the last two unshared blocks (sliding, then full).
        first = c["num_hidden_layers"] - shared
        if first < 2 or layer_types(c)[first - 2 : first] != ["sliding_attention", "full_attention"]:
            raise ExportError(
                "this Gemma 4 variant shares keys/values from other blocks than the last two unshared "
                "ones (sliding, then full), the only layout llama.cpp's gemma4 runs"
            )
    unsupported = [
        what
        for what, present in (
            ("mixture-of-experts blocks", c.get("enable_moe_block")),
            ("keys shared with values", c.get("attention_k_eq_v")),
            ("bidirectional attention", c.get("use_bidirectional_attention")),
            (
                "a per-layer vocabulary of another size",
                c.get("vocab_size_per_layer_input", c["vocab_size"]) != c["vocab_size"],
            ),
        )  # fmt: skip
        if present
    ]
    if unsupported:
        raise ExportError(
            f"this Gemma 4 variant has {', '.join(unsupported)}, which the converter does not write"
        )


def _gemma4_params(w: gguf.GGUFWriter, c: dict) -> None:
    n = c["num_hidden_layers"]
    types = layer_types(c)
    full_dim, swa_dim = layer_head_dim(c, _full_layer(c)), head_dim(c)
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(n)
    inter = c["intermediate_size"]
    if c.get("use_double_wide_mlp") and c.get("num_kv_shared_layers"):
        w.add_feed_forward_length([inter * 2 if kv_shared(c, i) else inter for i in range(n)])
    else:
        w.add_feed_forward_length(inter)
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c.get("num_key_value_heads") or c["num_attention_heads"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_key_length(full_dim)
    w.add_value_length(full_dim)
    w.add_key_length_swa(swa_dim)
    w.add_value_length_swa(swa_dim)
    # Full-attention blocks rotate a quarter of their dimensions ("proportional"), which llama.cpp
    # runs as a full-width rotation whose unrotated pairs get an infinite frequency divisor.
    w.add_rope_dimension_count(full_dim)
    local = rope_params(c, "sliding_attention")
    w.add_rope_dimension_count_swa(int(swa_dim * local.get("partial_rotary_factor", 1.0)))
    w.add_rope_freq_base(rope_params(c, "full_attention")["rope_theta"])
    _local_rope(w, c)
    w.add_sliding_window(c["sliding_window"])
    w.add_sliding_window_pattern([t == "sliding_attention" for t in types])
    w.add_shared_kv_layers(c.get("num_kv_shared_layers") or 0)
    w.add_embedding_length_per_layer_input(c.get("hidden_size_per_layer_input") or 0)
    if c.get("final_logit_softcapping"):
        w.add_final_logit_softcapping(c["final_logit_softcapping"])


def _gemma4_rope_freqs(c: dict) -> list[tuple[str, np.ndarray]]:
    full_dim = layer_head_dim(c, _full_layer(c))
    rotated = int(full_dim * rope_params(c, "full_attention").get("partial_rotary_factor", 1.0) / 2)
    factors = [1.0] * rotated + [1e30] * (full_dim // 2 - rotated)
    return [("rope_freqs.weight", np.array(factors, dtype=np.float32))]


def _gemma4_rename(name: str) -> str | None:
    return (
        name + ".weight" if name.endswith(".layer_scalar") else name
    )  # llama.cpp's layer_output_scale.weight


GEMMA4 = register(
    ArchDescription(
        ("Gemma4ForCausalLM",),
        gguf.MODEL_ARCH.GEMMA4,
        _gemma4_params,
        extra_tensors=_gemma4_rope_freqs,
        always_tied=True,
        rename=_gemma4_rename,
        check=_gemma4_check,
    )
)
