"""The parameter layout of each supported architecture, read from its HF config: every linear
projection of every block (what LoRA adapts) and the parameter count (what memory estimates and
the catalog show). Exact for the supported families; other llama-like models are approximated."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Linear:
    name: str
    n_in: int
    n_out: int
    bias: bool = False

    @property
    def params(self) -> int:
        return self.n_in * self.n_out + (self.n_out if self.bias else 0)


@dataclass(frozen=True)
class ModelShape:
    params: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    embedding_params: int  # input + (untied) output embeddings, kept at full precision under QLoRA
    block_linears: tuple[tuple[Linear, ...], ...] = ()  # per block: what LoRA can adapt
    outer_linears: tuple[Linear, ...] = ()  # linear layers outside the blocks (Gemma 4's)


def text_config(config: dict) -> dict:
    """The language model's config: a vision-language config keeps it under `text_config`."""
    if "hidden_size" not in config and isinstance(config.get("text_config"), dict):
        return config["text_config"]
    return config


def family_kind(config: dict) -> str:
    """The model type without the `_text` suffix of text-only variants (gemma3_text -> gemma3)."""
    kind = text_config(config).get("model_type", "")
    return kind.removesuffix("_text")


def layer_types(config: dict) -> list[str]:
    """Per block: full_attention, sliding_attention or linear_attention (recurrent)."""
    c = text_config(config)
    n = c["num_hidden_layers"]
    if c.get("layer_types"):
        return list(c["layer_types"])
    if family_kind(c) == "qwen3_5":
        interval = c.get("full_attention_interval", 4)
        return ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n)]
    return ["full_attention"] * n


def head_dim(c: dict, layer: int | None = None) -> int:
    """Head size of a block; Gemma 4's full-attention blocks use a wider one."""
    base = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    if layer is None or family_kind(c) != "gemma4" or layer_types(c)[layer] != "full_attention":
        return base
    per_layer = (c.get("per_layer_config") or {}).get(str(layer), {})
    return per_layer.get("head_dim") or c.get("global_head_dim") or base


def kv_shared(c: dict, layer: int) -> bool:
    """Gemma 4: the last `num_kv_shared_layers` blocks reuse earlier blocks' keys and values."""
    return layer >= c["num_hidden_layers"] - (c.get("num_kv_shared_layers") or 0)


def _attention(c: dict, i: int, kind: str) -> tuple[list[Linear], int]:
    """(linear projections, other parameters) of block i's token mixer."""
    h, heads = c["hidden_size"], c["num_attention_heads"]
    kv = c.get("num_key_value_heads") or heads
    d = head_dim(c, i)
    if kind == "qwen3_5" and layer_types(c)[i] == "linear_attention":
        k_dim = c["linear_num_key_heads"] * c["linear_key_head_dim"]
        v_heads = c["linear_num_value_heads"]
        v_dim = v_heads * c["linear_value_head_dim"]
        conv = (2 * k_dim + v_dim) * c.get("linear_conv_kernel_dim", 4)
        linears = [
            Linear("in_proj_qkv", h, 2 * k_dim + v_dim), Linear("in_proj_z", h, v_dim),
            Linear("in_proj_b", h, v_heads), Linear("in_proj_a", h, v_heads), Linear("out_proj", v_dim, h),
        ]  # fmt: skip
        return linears, conv + 2 * v_heads + c["linear_value_head_dim"]
    if kind == "phi3":
        return [Linear("qkv_proj", h, (heads + 2 * kv) * d), Linear("o_proj", heads * d, h)], 0
    bias = kind == "qwen2" or bool(c.get("attention_bias"))
    q_out = heads * d * (2 if kind == "qwen3_5" else 1)  # Qwen3.5's query carries its output gate
    linears = [Linear("q_proj", h, q_out, bias)]
    shared = kind == "gemma4" and kv_shared(c, i)
    if not shared:
        linears.append(Linear("k_proj", h, kv * d, bias))
        if not (kind == "gemma4" and c.get("attention_k_eq_v")):
            linears.append(Linear("v_proj", h, kv * d, bias))
    linears.append(Linear("o_proj", heads * d, h, bias and kind != "qwen2"))
    qk_norms = {"qwen3": 2, "qwen3_5": 2, "gemma3": 2, "gemma4": 1 if shared else 2, "olmo2": 2}.get(kind, 0)
    return linears, qk_norms * d


def _block(c: dict, i: int, kind: str) -> tuple[list[Linear], int]:
    h = c["hidden_size"]
    inter = c.get("intermediate_size") or 4 * h
    linears, other = _attention(c, i, kind)
    if kind == "gemma4" and c.get("use_double_wide_mlp") and kv_shared(c, i):
        inter *= 2
    if kind == "phi3":
        linears += [Linear("gate_up_proj", h, 2 * inter), Linear("down_proj", inter, h)]
    else:
        linears += [Linear("gate_proj", h, inter), Linear("up_proj", h, inter), Linear("down_proj", inter, h)]
    norms = 4 if kind.startswith("gemma") else 2
    other += norms * h
    if kind == "gemma4":
        per_layer = c.get("hidden_size_per_layer_input") or 0
        if per_layer:
            linears += [
                Linear("per_layer_input_gate", h, per_layer),
                Linear("per_layer_projection", per_layer, h),
            ]
            other += h  # the norm after the per-layer input
    return linears, other


def shape_from_config(config: dict) -> ModelShape:
    c = text_config(config)
    kind = family_kind(c)
    hidden, n_layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    heads = c["num_attention_heads"]
    tied = kind.startswith("gemma") or c.get("tie_word_embeddings", True)
    embed = vocab * hidden * (1 if tied else 2)
    blocks, params = [], 0
    for i in range(n_layers):
        linears, other = _block(c, i, kind)
        blocks.append(tuple(linears))
        params += other + sum(lin.params for lin in linears)
    outer: list[Linear] = []
    extra = hidden  # the final norm
    if kind == "gemma4" and (per_layer := c.get("hidden_size_per_layer_input")):
        embed += c.get("vocab_size_per_layer_input", vocab) * n_layers * per_layer
        outer.append(Linear("per_layer_model_projection", hidden, n_layers * per_layer))
        extra += per_layer
    params += embed + extra + sum(lin.params for lin in outer)
    return ModelShape(
        params=params, layers=n_layers, hidden=hidden, intermediate=c.get("intermediate_size") or 4 * hidden,
        heads=heads, kv_heads=c.get("num_key_value_heads") or heads, head_dim=head_dim(c), vocab=vocab,
        embedding_params=embed, block_linears=tuple(blocks), outer_linears=tuple(outer),
    )  # fmt: skip


def packing_blocker(config: dict) -> str | None:
    """Why packed rows would leak one example into the next in this architecture, or None.
    Attention layers keep packed examples apart with masks; a recurrent layer (Qwen3.5's gated
    delta rule) carries its state from one token to the next whatever the mask says."""
    recurrent = sorted({t for t in layer_types(config) if t not in ("full_attention", "sliding_attention")})
    if not recurrent:
        return None
    return (
        f"{family_kind(config)} has recurrent layers ({', '.join(recurrent)}) whose state would run from one "
        "packed example into the next; training on padded rows instead"
    )
