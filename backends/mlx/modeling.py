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

from localft.config import LoraSpec, TrainSpec
from localft.errors import ModelError

QUANT_GROUP_SIZE = 64
QUANT_BITS = 4
ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# Memory kept free for the OS and the rest of the machine when MLX's limit is set.
MEMORY_HEADROOM = 0.15
MIN_HEADROOM_BYTES = 2 * 1024**3


def compute_dtype(spec: TrainSpec, device: str) -> mx.Dtype:
    """fp32 on the CPU (MLX's bf16 matmul is no faster there), bf16 on Apple GPUs."""
    if spec.precision == "auto":
        return mx.float32 if device == "cpu" else mx.bfloat16
    return {"fp32": mx.float32, "bf16": mx.bfloat16, "fp16": mx.float16}[spec.precision]


def set_memory_limit() -> int:
    """Cap MLX's memory at the machine's (unified) memory less headroom, so an oversized run fails
    with an error instead of swapping the machine to a crawl. Returns the limit in bytes."""
    info = mx.device_info()
    total = int(info.get("memory_size", 0))
    if not total:
        from localft.hardware import machine_info

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


def load_base(model_dir: Path, dtype: mx.Dtype | None, quantize: bool):
    """(model, config) from an HF or MLX folder; `quantize` makes a 4-bit base (group size 64) with
    mlx-lm's quantizer unless the folder already holds a quantized model."""
    from mlx_lm.utils import load_model, quantize_model

    try:
        model, config = load_model(Path(model_dir))
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
    """Module paths inside a transformer block that get adapters; None lets mlx-lm take every linear."""
    if targets == "all-linear":
        return None
    wanted = set(targets)
    keys = [
        name
        for name, module in model.layers[0].named_modules()
        if name.rsplit(".", 1)[-1] in wanted and isinstance(module, (nn.Linear, nn.QuantizedLinear))
    ]
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


# Model types whose forward is exactly `model.model(inputs)` then the tied embedding or lm_head.
PLAIN_HEAD_TYPES = {"llama", "mistral", "qwen2", "qwen3", "phi3"}


def output_head(model: nn.Module):
    """The vocabulary projection as a function of final hidden states, or None when the model
    does more than project (Gemma's scaling and soft-capping): then only full logits are used."""
    if getattr(model, "model_type", None) not in PLAIN_HEAD_TYPES or not hasattr(model, "model"):
        return None
    if getattr(model.args, "tie_word_embeddings", False):
        return model.model.embed_tokens.as_linear
    return model.lm_head


def packing_supported(model: nn.Module) -> bool:
    """Block-diagonal attention for packed rows works by swapping the model module's mask
    builder; only modules that build their masks with it and run base's attention qualify."""
    module = sys.modules[type(model).__module__]
    return hasattr(module, "create_attention_mask") and hasattr(module, "scaled_dot_product_attention")


@contextlib.contextmanager
def segment_attention(model: nn.Module, segments: mx.array):
    """Within the block, attention masks keep each packed example to itself: causal, and only
    between tokens of the same segment. With RoPE this equals running each example alone."""
    module = sys.modules[type(model).__module__]
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
