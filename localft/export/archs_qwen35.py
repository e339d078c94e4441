"""GGUF description of Qwen3.5 (text): gated-delta-rule recurrent blocks between gated full-attention
blocks. llama.cpp's qwen35 wants the recurrent blocks' tensors in its own layout (see fixes below)."""

from __future__ import annotations

import gguf
import numpy as np

from localft.errors import ExportError
from localft.export.archs import ArchDescription, _common_params, register, rope_dims, rope_params
from localft.plan.model_shapes import layer_types

DEFAULT_MROPE_SECTIONS = [11, 11, 10]  # what Qwen3.5 uses when its config leaves them out


def _interval(c: dict) -> int:
    return c.get("full_attention_interval", 4)


def _qwen35_check(c: dict) -> None:
    if c["linear_key_head_dim"] != c["linear_value_head_dim"]:
        raise ExportError("llama.cpp's qwen35 needs equal key and value head sizes in the recurrent blocks")
    expected = ["full_attention" if (i + 1) % _interval(c) == 0 else "linear_attention"
                for i in range(c["num_hidden_layers"])]  # fmt: skip
    if layer_types(c) != expected:
        raise ExportError(
            "this Qwen3.5 variant mixes recurrent and attention blocks in another order than every "
            f"{_interval(c)}th block attending, the only layout the converter writes"
        )


def _qwen35_params(w: gguf.GGUFWriter, c: dict) -> None:
    _common_params(w, c)
    rope = rope_params(c)
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_rope_dimension_count(rope_dims(c))
    sections = list(rope.get("mrope_section") or DEFAULT_MROPE_SECTIONS)
    w.add_rope_dimension_sections((sections + [0, 0, 0, 0])[:4])
    w.add_ssm_conv_kernel(c["linear_conv_kernel_dim"])
    w.add_ssm_state_size(c["linear_key_head_dim"])
    w.add_ssm_group_count(c["linear_num_key_heads"])
    w.add_ssm_time_step_rank(c["linear_num_value_heads"])
    w.add_ssm_inner_size(c["linear_value_head_dim"] * c["linear_num_value_heads"])
    w.add_full_attention_interval(_interval(c))


def tiled_value_heads(data: np.ndarray, axis: int, k_heads: int, v_heads: int, size: int) -> np.ndarray:
    """HF groups the value heads by key head (k0: v0 v1, k1: v0 v1); llama.cpp broadcasts keys
    over value heads tiled (k0 k1, k0 k1), so value-head blocks along `axis` are reordered."""
    shape = data.shape
    grouped = data.reshape(*shape[:axis], k_heads, v_heads // k_heads, size, *shape[axis + 1 :])
    return np.ascontiguousarray(np.swapaxes(grouped, axis, axis + 1)).reshape(shape)


def _qwen35_fix(name: str, data: np.ndarray, c: dict) -> np.ndarray:
    if name.endswith("norm.weight") and ".linear_attn." not in name:
        return data + 1.0  # Qwen3.5's RMSNorm multiplies by (1 + weight)
    if ".linear_attn." not in name:
        return data
    if name.endswith(".A_log"):
        data = -np.exp(data)  # llama.cpp takes the decay rate A itself
    elif name.endswith("conv1d.weight"):
        data = data.reshape(data.shape[0], data.shape[-1])  # (channels, 1, kernel) -> (channels, kernel)
    nk, nv = c["linear_num_key_heads"], c["linear_num_value_heads"]
    if nk == nv:
        return data
    dv, qk = c["linear_value_head_dim"], 2 * nk * c["linear_key_head_dim"]
    if ".in_proj_qkv." in name or "conv1d" in name:  # q and k rows, then the value rows
        return np.concatenate([data[:qk], tiled_value_heads(data[qk:], 0, nk, nv, dv)])
    if ".in_proj_z." in name:
        return tiled_value_heads(data, 0, nk, nv, dv)
    if ".in_proj_a." in name or ".in_proj_b." in name or name.endswith((".A_log", ".dt_bias")):
        return tiled_value_heads(data, 0, nk, nv, 1)
    if ".out_proj." in name:
        return tiled_value_heads(data, 1, nk, nv, dv)
    return data


def _qwen35_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[-1]) if name.endswith("conv1d.weight") else shape


def _qwen35_rename(name: str) -> str | None:
    if name.startswith("mtp."):
        return None  # multi-token-prediction head: not part of the text model llama.cpp runs
    return name.replace(".linear_attn.dt_bias", ".linear_attn.dt_proj.bias")


QWEN35 = register(
    ArchDescription(
        ("Qwen3_5ForCausalLM",),
        gguf.MODEL_ARCH.QWEN35,
        _qwen35_params,
        _qwen35_fix,
        rename=_qwen35_rename,
        fix_shape=_qwen35_shape,
        check=_qwen35_check,
        adapter_export=False,  # value-head reordering of out_proj would fall on A's columns
    )
)
