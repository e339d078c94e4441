"""Per-architecture descriptions for the GGUF converter: hyperparameters, tensor fixes, extra tensors.

Each description is a few small functions registered under the HF `architectures` names it handles;
Gemma's and Qwen3.5's live in archs_gemma.py and archs_qwen35.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import gguf
import numpy as np

from localft.errors import ExportError

# (gguf writer, HF config) -> None
WriteParams = Callable[[gguf.GGUFWriter, dict], None]
# (HF tensor name, data, HF config) -> data
FixTensor = Callable[[str, np.ndarray, dict], np.ndarray]
# HF config -> [(gguf tensor name, float32 data)]
ExtraTensors = Callable[[dict], list[tuple[str, np.ndarray]]]
# HF tensor name -> the name gguf-py's tensor map knows it by (None: not written)
Rename = Callable[[str], str | None]
# HF config -> None, or ExportError when llama.cpp cannot run this variant
Check = Callable[[dict], None]
# (HF tensor name, stored shape) -> the shape fix_tensor gives it
FixShape = Callable[[str, tuple[int, ...]], tuple[int, ...]]


def _no_fix(name: str, data: np.ndarray, config: dict) -> np.ndarray:
    return data


def _no_extra(config: dict) -> list[tuple[str, np.ndarray]]:
    return []


def _same_name(name: str) -> str | None:
    return name


def _same_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


def _no_check(config: dict) -> None:
    return None


@dataclass(frozen=True)
class ArchDescription:
    hf_names: tuple[str, ...]
    arch: gguf.MODEL_ARCH
    write_params: WriteParams
    fix_tensor: FixTensor = _no_fix
    extra_tensors: ExtraTensors = _no_extra
    always_tied: bool = False  # the GGUF arch has no output tensor (gemma)
    skip: tuple[str, ...] = field(default=("rotary_emb.inv_freq",))
    rename: Rename = _same_name
    fix_shape: FixShape = _same_shape
    check: Check = _no_check
    adapter_export: bool = True  # fix_tensor also holds for a LoRA adapter's B matrices

    @property
    def gguf_name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.arch]


ARCHITECTURES: dict[str, ArchDescription] = {}


def register(desc: ArchDescription) -> ArchDescription:
    for name in desc.hf_names:
        ARCHITECTURES[name] = desc
    return desc


def rope_params(config: dict, layer_type: str = "full_attention") -> dict:
    """Rope settings from either transformers 5 `rope_parameters` (maybe per layer type) or 4.x keys."""
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if layer_type in params and isinstance(params[layer_type], dict):
        params = params[layer_type]
    params = dict(params)
    params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    params.setdefault("rope_type", params.get("type", "default"))
    return params


def head_dim(config: dict) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def rope_dims(config: dict, layer_type: str = "full_attention") -> int:
    """Head dimensions that rotate: all of them, or `partial_rotary_factor` of them (Phi-4, Qwen3.5)."""
    rope = rope_params(config, layer_type)
    return int(head_dim(config) * rope.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0)))


def _common_params(w: gguf.GGUFWriter, c: dict) -> None:
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c.get("num_key_value_heads") or c["num_attention_heads"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    if c.get("head_dim"):
        w.add_key_length(c["head_dim"])
        w.add_value_length(c["head_dim"])


def _rope_scaling(w: gguf.GGUFWriter, rope: dict) -> None:
    kind, factor = rope.get("rope_type"), rope.get("factor")
    if kind == "linear" and factor:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(factor)
    elif kind == "yarn" and factor:
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(factor)
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])


# --- llama family (Llama 2/3.x, SmolLM2, Mistral) ---------------------------------------------


def _llama_params(w: gguf.GGUFWriter, c: dict) -> None:
    _common_params(w, c)
    rope = rope_params(c)
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_rope_dimension_count(head_dim(c))
    w.add_vocab_size(c["vocab_size"])
    _rope_scaling(w, rope)


def unpermute_rope(weight: np.ndarray, n_head: int) -> np.ndarray:
    """HF stores llama q/k rows with rotary halves split; llama.cpp wants them interleaved."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _llama_fix(name: str, data: np.ndarray, c: dict) -> np.ndarray:
    if name.endswith(("q_proj.weight", "q_proj.bias")):
        return unpermute_rope(data, c["num_attention_heads"])
    if name.endswith(("k_proj.weight", "k_proj.bias")):
        return unpermute_rope(data, c.get("num_key_value_heads") or c["num_attention_heads"])
    return data


def llama3_rope_factors(c: dict) -> list[tuple[str, np.ndarray]]:
    """Llama 3.x long-context rope: llama.cpp takes the per-frequency factors as a tensor."""
    rope = rope_params(c)
    if rope.get("rope_type") != "llama3":
        return []
    dim, base, factor = head_dim(c), rope["rope_theta"], rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            factors.append(1.0)
        elif wavelen > old_ctx / low:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return [("rope_freqs.weight", np.array(factors, dtype=np.float32))]


LLAMA = register(
    ArchDescription(
        ("LlamaForCausalLM", "MistralForCausalLM"),
        gguf.MODEL_ARCH.LLAMA,
        _llama_params,
        _llama_fix,
        llama3_rope_factors,
    )
)

# --- qwen2 / qwen3 -------------------------------------------------------------------------


def _qwen_params(w: gguf.GGUFWriter, c: dict) -> None:
    _common_params(w, c)
    rope = rope_params(c)
    w.add_rope_freq_base(rope["rope_theta"])
    _rope_scaling(w, rope)


QWEN2 = register(ArchDescription(("Qwen2ForCausalLM",), gguf.MODEL_ARCH.QWEN2, _qwen_params))
QWEN3 = register(ArchDescription(("Qwen3ForCausalLM",), gguf.MODEL_ARCH.QWEN3, _qwen_params))

# --- phi3 ----------------------------------------------------------------------------------


def _phi3_params(w: gguf.GGUFWriter, c: dict) -> None:
    _common_params(w, c)
    rope = rope_params(c)
    w.add_rope_dimension_count(rope_dims(c))
    w.add_rope_freq_base(rope["rope_theta"])
    orig_ctx = (
        c.get("original_max_position_embeddings")
        or rope.get("original_max_position_embeddings")
        or c["max_position_embeddings"]
    )
    w.add_rope_scaling_orig_ctx_len(orig_ctx)
    w.add_sliding_window(c.get("sliding_window") or 0)
    if rope.get("rope_type") in ("longrope", "su"):
        w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)
        scale = c["max_position_embeddings"] / orig_ctx
        attn = 1.0 if scale <= 1.0 else math.sqrt(1 + math.log(scale) / math.log(orig_ctx))
        w.add_rope_scaling_attn_factors(attn)


def _phi3_rope_factors(c: dict) -> list[tuple[str, np.ndarray]]:
    rope = rope_params(c)
    if rope.get("rope_type") not in ("longrope", "su"):
        return []
    return [
        ("rope_factors_long.weight", np.array(rope["long_factor"], dtype=np.float32)),
        ("rope_factors_short.weight", np.array(rope["short_factor"], dtype=np.float32)),
    ]


PHI3 = register(
    ArchDescription(
        ("Phi3ForCausalLM",), gguf.MODEL_ARCH.PHI3, _phi3_params, extra_tensors=_phi3_rope_factors
    )
)

# --- smollm3: llama with every 4th block free of rotary embeddings ----------------------------


def _smollm3_check(c: dict) -> None:
    n = c["num_hidden_layers"]
    if (rope_layers := c.get("no_rope_layers")) is None:
        interval = c.get("no_rope_layer_interval", 4)
        rope_layers = [int((i + 1) % interval != 0) for i in range(n)]
    if list(rope_layers) != [int((i + 1) % 4 != 0) for i in range(n)]:
        raise ExportError(
            "this SmolLM3 variant skips rotary embeddings on other blocks than every 4th, the only "
            "layout llama.cpp's smollm3 runs; it cannot be converted"
        )


SMOLLM3 = register(
    ArchDescription(
        ("SmolLM3ForCausalLM",),
        gguf.MODEL_ARCH.SMOLLM3,
        _llama_params,
        _llama_fix,
        llama3_rope_factors,
        check=_smollm3_check,
    )
)
