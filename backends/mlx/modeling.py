"""Load a base model into MLX (quantizing it to 4 bits on the fly for QLoRA), add LoRA/DoRA layers
with mlx-lm's tuner, save and load adapters in mlx-lm's format, and set MLX's memory limit."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from localft.config import LoraSpec
from localft.errors import ModelError

QUANT_GROUP_SIZE = 64
QUANT_BITS = 4
ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# Memory kept free for the OS and the rest of the machine when MLX's limit is set.
MEMORY_HEADROOM = 0.15
MIN_HEADROOM_BYTES = 2 * 1024**3


def mlx_dtype(precision: str) -> mx.Dtype:
    """The plan's compute precision as an MLX dtype."""
    return {"fp32": mx.float32, "bf16": mx.bfloat16, "fp16": mx.float16}[precision]


def set_memory_limit() -> int:
    """Cap MLX's memory at the machine's (unified) memory less headroom, so an oversized run fails
    with an error instead of swapping the machine to a crawl. Returns the limit in bytes."""
    info = mx.device_info()
    total = int(info.get("memory_size", 0))
    if not total:
        from localft.plan.hardware import machine_info

        total = machine_info().ram_bytes
    limit = int(total - max(MIN_HEADROOM_BYTES, total * MEMORY_HEADROOM))
    if limit > 0:
        mx.set_memory_limit(limit)
    if "max_recommended_working_set_size" in info:  # Metal: keep the weights wired
        from mlx_lm.utils import maybe_set_recommended_wired_limit

        maybe_set_recommended_wired_limit()
    return limit


def is_quantized(config: dict) -> bool:
    return "quantization" in config or "quantization_config" in config


# Text-only model types whose mlx-lm module carries another name (it reads both layouts).
MODULE_FOR_TYPE = {"qwen3_5_text": "qwen3_5"}


def model_classes(config: dict):
    """mlx-lm's classes for a config, including text-only variants saved under their own type."""
    from mlx_lm.utils import _get_classes

    module = MODULE_FOR_TYPE.get(config.get("model_type", ""))
    return _get_classes({**config, "model_type": module} if module else config)


def legacy_keys(config: dict) -> dict:
    """Config overrides for mlx-lm: the keys it reads that transformers 5 folds into
    `rope_parameters` (rope_theta, rope_scaling, partial_rotary_factor) or per-layer settings
    (Gemma 4's global_head_dim), so a folder saved by transformers 5 loads with the same rotary
    embeddings; and LongRoPE's short factors (see below)."""
    extra: dict = {}
    rope = config.get("rope_parameters") or {}
    if "full_attention" in rope:  # per layer type (Gemma 3): global and local bases
        extra["rope_theta"] = rope["full_attention"].get("rope_theta")
        extra["rope_local_base_freq"] = rope.get("sliding_attention", {}).get("rope_theta")
    elif rope:
        extra["rope_theta"] = rope.get("rope_theta")
        extra["partial_rotary_factor"] = rope.get("partial_rotary_factor")
        kind = rope.get("rope_type", rope.get("type", "default"))
        if kind != "default":
            extra["rope_scaling"] = {**rope, "type": kind, "rope_type": kind}
    if config.get("model_type") == "gemma4_text":
        dims = [v["head_dim"] for v in (config.get("per_layer_config") or {}).values() if "head_dim" in v]
        extra["global_head_dim"] = dims[0] if dims else None
    extra = {k: v for k, v in extra.items() if v is not None and k not in config}
    scaling = config.get("rope_scaling") or extra.get("rope_scaling") or {}
    if scaling.get("type", scaling.get("rope_type")) in ("longrope", "su") and "short_factor" in scaling:
        # mlx-lm's LongRoPE always applies the long factors; transformers (and llama.cpp at a
        # context within original_max_position_embeddings, where fine-tuning rows are) use the
        # short ones: train on the model the GGUF will be.
        extra["rope_scaling"] = {**scaling, "long_factor": scaling["short_factor"]}
    return extra


def load_base(model_dir: Path, dtype: mx.Dtype | None, quantize: bool):
    """(model, config) from an HF or MLX folder; `quantize` makes a 4-bit base (group size 64) with
    mlx-lm's quantizer unless the folder already holds a quantized model."""
    from mlx_lm.utils import load_config, load_model, quantize_model

    try:
        overrides = legacy_keys(load_config(Path(model_dir)))
        model, config = load_model(Path(model_dir), model_config=overrides, get_model_classes=model_classes)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise ModelError(f"MLX cannot load {model_dir}: {str(exc).splitlines()[0]}") from None
    if dtype is not None:  # None keeps the stored dtype
        model.set_dtype(dtype)
    if quantize and not is_quantized(config):
        with contextlib.redirect_stdout(sys.stderr):  # it prints bits per weight
            model, config = quantize_model(model, config, QUANT_GROUP_SIZE, QUANT_BITS)
    mx.eval(model.parameters())
    return model, config


def lora_keys(model: nn.Module, targets) -> list[str] | None:
    """Module paths inside a transformer block that get adapters; None lets mlx-lm take every linear.
    Blocks differ (Qwen3.5's recurrent and attention blocks), so every block's names count."""
    if targets == "all-linear":
        return None
    wanted = set(targets)
    keys = sorted({
        name
        for layer in model.layers
        for name, module in layer.named_modules()
        if name.rsplit(".", 1)[-1] in wanted and isinstance(module, (nn.Linear, nn.QuantizedLinear))
    })  # fmt: skip
    if not keys:
        raise ModelError(f"no linear layer named {', '.join(sorted(wanted))} in this model's blocks")
    return keys


def adapter_config(model: nn.Module, lora: LoraSpec) -> dict:
    """mlx-lm's adapter_config.json: its `scale` is our alpha / rank."""
    layers = len(model.layers)
    return {
        "fine_tune_type": "dora" if lora.dora else "lora",
        "num_layers": min(lora.num_layers or layers, layers),
        "lora_parameters": {
            "rank": lora.rank,
            "scale": lora.scale,
            "dropout": lora.dropout,
            "keys": lora_keys(model, lora.targets),
        },
    }


def add_adapters(model: nn.Module, config: dict) -> None:
    """Freeze the base and add LoRA/DoRA layers (trainable) as `config` says."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    params = dict(config["lora_parameters"])
    if params.get("keys") is None:
        params.pop("keys", None)
    model.freeze()
    linear_to_lora_layers(model, config["num_layers"], params, use_dora=config["fine_tune_type"] == "dora")


def trainable_count(model: nn.Module) -> int:
    return sum(v.size for _, v in tree_flatten(model.trainable_parameters()))


def save_adapter(model: nn.Module, config: dict, folder: Path) -> None:
    """Adapter weights and config in mlx-lm's layout (`mlx_lm.generate --adapter-path` reads it)."""
    folder.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(folder / ADAPTER_WEIGHTS), dict(tree_flatten(model.trainable_parameters())))
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def read_adapter_config(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} holds no MLX adapter ({ADAPTER_CONFIG} missing)") from None


def load_adapter_weights(model: nn.Module, folder: Path) -> None:
    model.load_weights(str(Path(folder) / ADAPTER_WEIGHTS), strict=False)


def enable_grad_checkpoint(model: nn.Module) -> None:
    """Recompute each block's activations in the backward pass. mlx-lm's grad_checkpoint patches
    the block class for the whole process; this swaps in a per-model subclass instead."""
    for layer in model.layers:
        base = type(layer)
        if getattr(base, "_localft_checkpointed", False):
            continue

        def call(self, *args, _base=base, **kwargs):
            def inner(params, *args, **kwargs):
                self.update(params)
                return _base.__call__(self, *args, **kwargs)

            return mx.checkpoint(inner)(self.trainable_parameters(), *args, **kwargs)

        layer.__class__ = type(base.__name__, (base,), {"__call__": call, "_localft_checkpointed": True})


# Model types whose forward is exactly `model.model(inputs)` then the tied embedding or lm_head
# (Gemma 4 then soft-caps the logits, which the head below repeats).
PLAIN_HEAD_TYPES = {"llama", "mistral", "qwen2", "qwen3", "qwen3_5", "phi3", "smollm3", "gemma3", "gemma4"}


def language_model(model: nn.Module) -> nn.Module:
    """The text model inside mlx-lm's vision-language wrappers (Qwen3.5), or the model itself."""
    return getattr(model, "language_model", model)


def output_head(model: nn.Module):
    """The vocabulary projection as a function of final hidden states (what the model does after
    its body), or None for a model whose output is not known to be just that."""
    lm = language_model(model)
    kind = str(getattr(lm, "model_type", "")).removesuffix("_text")
    if kind not in PLAIN_HEAD_TYPES or not hasattr(lm, "model"):
        return None
    tied = getattr(lm, "tie_word_embeddings", getattr(lm.args, "tie_word_embeddings", False))
    project = lm.model.embed_tokens.as_linear if tied else lm.lm_head
    cap = getattr(lm, "final_logit_softcapping", None) if kind == "gemma4" else None
    if not cap:
        return project
    return lambda hidden: mx.tanh(project(hidden) / cap) * cap


def _mask_module(model: nn.Module):
    """The module whose `create_attention_mask` the transformer body calls (SmolLM3 runs
    mlx-lm's llama body, so that is llama's)."""
    body = getattr(language_model(model), "model", model)
    return sys.modules[type(body).__module__]


def packing_blocker(model: nn.Module) -> str | None:
    """Why this framework cannot keep packed examples apart in this model, or None. Block-diagonal
    attention works by swapping the body's mask builder (the architecture's own limits, such as
    recurrent layers, are the training loop's: localft.plan.model_shapes)."""
    module = _mask_module(model)
    if hasattr(module, "create_attention_mask") and hasattr(module, "scaled_dot_product_attention"):
        return None
    kind = getattr(language_model(model), "model_type", type(model).__name__)
    return f"{kind} builds its attention masks in a way localft cannot swap on MLX"


@contextlib.contextmanager
def segment_attention(model: nn.Module, segments: mx.array):
    """Within the block, attention masks keep each packed example to itself: causal, and only
    between tokens of the same segment. With RoPE this equals running each example alone."""
    module = _mask_module(model)
    original = module.create_attention_mask

    def masked(h, cache=None, window_size=None, return_array=False):
        idx = mx.arange(h.shape[1])
        allowed = idx[:, None] >= idx[None]
        if window_size:
            allowed = allowed & (idx[:, None] < idx[None] + window_size)
        same = segments[:, None, :, None] == segments[:, None, None, :]
        return same & allowed

    module.create_attention_mask = masked
    try:
        yield
    finally:
        module.create_attention_mask = original
