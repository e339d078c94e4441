"""Load the base model (full precision or NF4) on the plan's device and wrap it with peft LoRA;
load a full fine-tuning's saved weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from localft.config import LoraSpec, TrainSpec
from localft.errors import ConfigError, ModelError

from . import attention
from .fused_lora import register_fused_lora
from .loss import apply_liger_kernels


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda" | "mps" | "cpu"
    dtype_name: str  # "fp32" | "bf16" | "fp16": compute dtype


def check_device(device: str) -> str:
    """The plan's device, if this torch can run on it."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("the plan trains on CUDA but this torch sees no CUDA GPU; use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("the plan trains on MPS but this torch has no MPS; use --device cpu")
    if device not in ("cuda", "mps", "cpu"):
        raise ConfigError(f"device {device!r} is not a torch device; use --device auto, cuda, mps or cpu")
    return device


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


def attention_for(model_dir: Path, spec: TrainSpec, where: Placement) -> str:
    """The varlen kernel for packed rows where it runs (see attention.py), else SDPA;
    LOCALFT_ATTENTION=sdpa keeps the masked SDPA path everywhere."""
    import os

    from transformers import AutoConfig

    from localft.train.loop import packing_for

    if os.environ.get("LOCALFT_ATTENTION") == "sdpa":
        return "sdpa"
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError):
        return "sdpa"  # from_pretrained below reports the problem
    if attention.supports(config, where.device, where.dtype_name, packing_for(spec, model_dir)[0]):
        attention.register()
        return attention.NAME
    return "sdpa"


def current_cuda_device() -> int:
    """The GPU this process uses: its rank's, once a several-process run set it (else 0)."""
    import torch

    return torch.cuda.current_device()


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
            # FSDP shards flat storage of one dtype: the packed 4-bit weights must be stored in it.
            **({"bnb_4bit_quant_storage": dtype} if spec.sharding == "fsdp" else {}),
        )
        kwargs["device_map"] = {"": where.device if where.device != "cuda" else current_cuda_device()}
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model in {model_dir}: {exc}") from None
    if spec.quantize != "4bit":
        model.to(where.device)
    model.config.use_cache = False
    return model


def build_full_model(model_dir: Path, spec: TrainSpec, where: Placement, liger: bool = False):
    """The base with every weight trainable (full fine-tuning): fp32 weights, so the optimizer
    updates master weights while autocast computes in the plan's precision."""
    model = load_base(model_dir, spec, Placement(where.device, "fp32"))
    if liger:
        apply_liger_kernels(model)
    for p in model.parameters():
        p.requires_grad_(True)
    if spec.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def load_full_weights(model, folder: Path, device: str) -> None:
    """Every weight of a full fine-tuning checkpoint; only tied output weights may be absent."""
    from safetensors.torch import load_file

    from localft.errors import RunError

    state: dict = {}
    for f in sorted(folder.glob("model*.safetensors")):
        state.update(load_file(f, device=device))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {n for n, p in model.named_parameters() if p is model.get_input_embeddings().weight}
    if unexpected or set(missing) - tied - {"lm_head.weight"}:
        raise RunError(f"checkpoint {folder.name} does not hold this model's weights; start a new run")


def build_lora_model(
    model_dir: Path, spec: TrainSpec, where: Placement, fused: bool = True, liger: bool = False
):
    """The peft model with fresh adapters (seeded) and only the adapters trainable; `fused` adds
    the LoRA update inside the base GEMM (same weights, same adapter files); `liger` swaps in
    Liger-Kernel's RMSNorm, RoPE and SwiGLU first (CUDA)."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training

    model = load_base(model_dir, spec, where)
    if liger:
        apply_liger_kernels(model)
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
