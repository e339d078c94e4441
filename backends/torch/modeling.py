"""Load the base model (full precision or NF4), wrap it with peft LoRA, and compute the loss with
the output layer applied only where a label is set (most positions of a chat row are masked)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from localft.config import LoraSpec, TrainSpec
from localft.data.chat_tokens import IGNORE
from localft.errors import ConfigError, ModelError

from . import attention
from .fused_lora import register_fused_lora


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda" | "mps" | "cpu"
    dtype_name: str  # "fp32" | "bf16" | "fp16": compute dtype


def resolve_device(spec: TrainSpec) -> str:
    import torch

    if spec.device in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' asked for but torch sees no CUDA GPU; use --device cpu")
        return "cuda"
    if spec.device == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' asked for but this torch has no MPS; use --device cpu")
        return "mps"
    if spec.device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def placement(spec: TrainSpec) -> Placement:
    device = resolve_device(spec)
    if spec.precision != "auto":
        return Placement(device, spec.precision)
    # bf16 matmul on a CPU without AMX runs ~50x slower than fp32: stay in fp32 there.
    return Placement(device, "fp32" if device == "cpu" else "bf16")


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def lora_config(lora: LoraSpec, n_layers: int):
    from peft import LoraConfig

    layers = None
    if lora.num_layers is not None and lora.num_layers < n_layers:
        layers = list(range(n_layers - lora.num_layers, n_layers))
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules="all-linear" if lora.targets == "all-linear" else list(lora.targets),
        use_dora=lora.dora,
        layers_to_transform=layers,
        bias="none",
        task_type="CAUSAL_LM",
    )


def packing_for(model_dir: Path, spec: TrainSpec) -> tuple[bool, str | None]:
    """(pack rows?, why not where packing was asked for but cannot be exact for this architecture)."""
    import json

    from localft.model_shapes import packing_blocker

    if not spec.packing:
        return False, None
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True, None  # loading the model reports what is wrong with the folder
    reason = packing_blocker(config)
    return reason is None, reason


def attention_for(model_dir: Path, spec: TrainSpec, where: Placement) -> str:
    """The varlen kernel for packed rows where it runs (see attention.py), else SDPA;
    LOCALFT_ATTENTION=sdpa keeps the masked SDPA path everywhere."""
    import os

    from transformers import AutoConfig

    if os.environ.get("LOCALFT_ATTENTION") == "sdpa":
        return "sdpa"
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError):
        return "sdpa"  # from_pretrained below reports the problem
    if attention.supports(config, where.device, where.dtype_name, packing_for(model_dir, spec)[0]):
        attention.register()
        return attention.NAME
    return "sdpa"


def load_base(model_dir: Path, spec: TrainSpec, where: Placement):
    """The frozen base, on its device, at the compute dtype or in NF4 when spec.quantize == '4bit'."""
    from transformers import AutoModelForCausalLM

    dtype = torch_dtype(where.dtype_name)
    kwargs = {"dtype": dtype, "attn_implementation": attention_for(model_dir, spec, where)}
    if spec.quantize == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": where.device if where.device != "cuda" else 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model in {model_dir}: {exc}") from None
    if spec.quantize != "4bit":
        model.to(where.device)
    model.config.use_cache = False
    return model


def build_lora_model(model_dir: Path, spec: TrainSpec, where: Placement, fused: bool = True):
    """The peft model with fresh adapters (seeded) and only the adapters trainable; `fused` adds
    the LoRA update inside the base GEMM (same weights, same adapter files)."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training

    model = load_base(model_dir, spec, where)
    if spec.quantize == "4bit":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=spec.gradient_checkpointing)
    torch.manual_seed(spec.seed)
    config = lora_config(spec.lora, model.config.num_hidden_layers)
    if fused:
        register_fused_lora(config)
    model = get_peft_model(model, config)
    if spec.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def _final_softcap(model) -> float | None:
    cfg = model.config
    return getattr(cfg, "final_logit_softcapping", None) or getattr(
        getattr(cfg, "text_config", None), "final_logit_softcapping", None
    )


def token_loss_sum(model, batch, device: str):
    """(sum of token cross-entropies, number of trained tokens) for one micro-batch.

    The decoder runs on every position, but the vocabulary projection (the largest single
    matmul for small models) runs only on positions whose next token is trained."""
    import torch
    import torch.nn.functional as F

    ids = batch["input_ids"].to(device)
    pos = batch["position_ids"].to(device)
    labels = batch["labels"].to(device)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # attention_mask=None + restarting position_ids: transformers builds a per-example causal mask,
    # or, with the varlen kernel, the examples' bounds go to the kernel instead.
    extra = {}
    if getattr(base.config, "_attn_implementation", None) == attention.NAME:
        extra = attention.sequence_bounds(batch["position_ids"], device)
    out = base.get_decoder()(input_ids=ids, position_ids=pos, use_cache=False, **extra)
    hidden = out.last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    keep = targets != IGNORE
    picked = hidden[keep]
    logits = base.get_output_embeddings()(picked).float()
    cap = _final_softcap(base)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    loss_sum = F.cross_entropy(logits, targets[keep], reduction="sum")
    return loss_sum, int(keep.sum())


def trainable_state_dict(model) -> dict:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)
