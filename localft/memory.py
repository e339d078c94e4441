"""A memory estimate for a LoRA/QLoRA run (weights + adapters + optimizer + activations), made
before loading anything, so a run that cannot fit is refused with the numbers and a smaller plan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localft.config import TrainSpec
from localft.errors import DoesNotFit
from localft.hardware import fmt_bytes
from localft.models import CatalogModel

# Bytes per parameter of the frozen base. NF4 with double quantization stores 4 bits plus
# ~0.127 bits of scales per weight; embeddings and norms stay at the compute dtype.
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "nf4": 0.5 + 0.127 / 8}
# Activations kept for backward per token per layer, in units of hidden × dtype bytes
# (attention inputs, projections, MLP intermediates, norms; Korthikanti et al. give ~34 for
# full training, LoRA keeps a little less, and we round up for allocator slack).
ACTIVATION_FACTOR = 34
OVERHEAD_BYTES = 400 * 1024**2  # CUDA context / torch runtime / tokenizer


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
    embedding_params: int  # input + (untied) output embeddings, not quantized


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    lora: int
    optimizer: int  # optimizer states + adapter gradients
    activations: int
    overhead: int
    # What the activation term is made of, so check_fits can suggest a smaller run.
    batch_size: int
    seq_len: int
    activation_per_row: int

    @property
    def total(self) -> int:
        return self.weights + self.lora + self.optimizer + self.activations + self.overhead

    def with_batch(self, batch_size: int, seq_len: int) -> MemoryEstimate:
        per_row = self.activation_per_row * seq_len // max(self.seq_len, 1)
        from dataclasses import replace

        return replace(
            self,
            batch_size=batch_size,
            seq_len=seq_len,
            activations=per_row * batch_size,
            activation_per_row=per_row,
        )

    def describe(self) -> str:
        return (
            f"weights {fmt_bytes(self.weights)} + LoRA {fmt_bytes(self.lora)} + optimizer "
            f"{fmt_bytes(self.optimizer)} + activations {fmt_bytes(self.activations)} "
            f"(batch {self.batch_size} x {self.seq_len} tokens) + runtime {fmt_bytes(self.overhead)} "
            f"= {fmt_bytes(self.total)}"
        )


def shape_from_config(cfg: dict) -> ModelShape:
    cfg = cfg.get("text_config", cfg) if "hidden_size" not in cfg else cfg
    hidden, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    inter = cfg.get("intermediate_size") or 4 * hidden
    attn = hidden * heads * head_dim * 2 + hidden * kv * head_dim * 2
    mlp = 3 * hidden * inter
    embed = vocab * hidden * (1 if cfg.get("tie_word_embeddings", True) else 2)
    kind = cfg.get("model_type", "")
    norms = (4 if kind.startswith("gemma") else 2) * hidden
    if kind in ("qwen3", "gemma3", "gemma3_text", "olmo2"):
        norms += 2 * head_dim  # per-head q/k norms
    if kind == "qwen2":
        attn += heads * head_dim + 2 * kv * head_dim  # q/k/v biases
    params = layers * (attn + mlp + norms) + embed + hidden
    return ModelShape(params, layers, hidden, inter, heads, kv, head_dim, vocab, embed)


def shape_from_catalog(entry: CatalogModel) -> ModelShape:
    # The catalog lists size, depth, width and vocabulary; the rest follows common ratios.
    hidden, layers = entry.hidden, entry.layers
    heads = max(hidden // 64, 1)
    embed = entry.vocab * hidden
    return ModelShape(
        int(entry.params_m * 1e6), layers, hidden, int(hidden * 8 / 3), heads, heads, 64, entry.vocab, embed
    )


def model_shape(model: Path | str | CatalogModel | dict) -> ModelShape:
    if isinstance(model, CatalogModel):
        return shape_from_catalog(model)
    if isinstance(model, dict):
        return shape_from_config(model)
    return shape_from_config(json.loads((Path(model) / "config.json").read_text(encoding="utf-8")))


def lora_params(spec: TrainSpec, s: ModelShape) -> int:
    """Adapter parameters: rank × (in + out) for each adapted projection (DoRA adds `out`)."""
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    projections = {
        "q_proj": (s.hidden, q), "k_proj": (s.hidden, kv), "v_proj": (s.hidden, kv), "o_proj": (q, s.hidden),
        "gate_proj": (s.hidden, s.intermediate), "up_proj": (s.hidden, s.intermediate),
        "down_proj": (s.intermediate, s.hidden),
    }  # fmt: skip
    targets = spec.lora.targets
    chosen = (
        projections.values()
        if targets == "all-linear"
        else [projections.get(t, (s.hidden, s.hidden)) for t in targets]
    )
    per_layer = sum(spec.lora.rank * (i + o) + (o if spec.lora.dora else 0) for i, o in chosen)
    layers = min(spec.lora.num_layers or s.layers, s.layers)
    return per_layer * layers


def compute_dtype(spec: TrainSpec, device: str) -> str:
    if spec.precision != "auto":
        return spec.precision
    return "fp32" if device == "cpu" else "bf16"


def estimate_memory(
    spec: TrainSpec, model: Path | str | CatalogModel | dict, device: str = "cpu"
) -> MemoryEstimate:
    """Bytes a run needs on `device` ("cpu", "cuda", "mps"); `model` is a model folder, a catalog
    entry or a config dict."""
    s = model_shape(model)
    dtype = compute_dtype(spec, device)
    act_bytes = WEIGHT_BYTES[dtype]
    if spec.quantize == "4bit":
        body = s.params - s.embedding_params
        weights = int(body * WEIGHT_BYTES["nf4"] + s.embedding_params * act_bytes)
    else:
        weights = int(s.params * act_bytes)
    n_lora = lora_params(spec, s)
    lora = n_lora * 4  # adapters are kept in fp32
    # AdamW: two fp32 moments (8-bit paged AdamW on CUDA QLoRA: two bytes) + an fp32 gradient.
    state = 2 if (spec.quantize == "4bit" and device == "cuda") else 8
    optimizer = n_lora * (state + 4)
    seq = spec.max_seq_len
    if spec.gradient_checkpointing:  # one hidden state per layer kept, one layer recomputed
        per_token = (s.layers * s.hidden + ACTIVATION_FACTOR * s.hidden) * act_bytes
    else:
        per_token = ACTIVATION_FACTOR * s.hidden * act_bytes * s.layers
    # Without flash attention (CPU, MPS) the score matrix is materialized, per head.
    scores = (
        0
        if device == "cuda"
        else s.heads * seq * seq * act_bytes * (1 if spec.gradient_checkpointing else s.layers)
    )
    # fp32 logits for the trained positions and their gradient.
    logits = seq * s.vocab * 4 * 2
    per_row = int(per_token * seq + scores + logits)
    return MemoryEstimate(
        weights=weights,
        lora=lora,
        optimizer=optimizer,
        activations=per_row * spec.batch_size,
        overhead=OVERHEAD_BYTES,
        batch_size=spec.batch_size,
        seq_len=seq,
        activation_per_row=per_row,
    )


def suggest_smaller(estimate: MemoryEstimate, available_bytes: int) -> str:
    """The largest micro-batch (then the longest sequence) that fits, as advice."""
    batch, seq = estimate.batch_size, estimate.seq_len
    while batch > 1:
        batch //= 2
        trial = estimate.with_batch(batch, seq)
        if trial.total <= available_bytes:
            accum = max(estimate.batch_size // batch, 1)
            return f"try --batch-size {batch} with --grad-accum x{accum} (needs {fmt_bytes(trial.total)})"
    while seq > 64:
        seq //= 2
        trial = estimate.with_batch(1, seq)
        if trial.total <= available_bytes:
            return f"try --batch-size 1 --max-seq-len {seq} (needs {fmt_bytes(trial.total)})"
    return "the weights alone do not fit: pick a smaller model or --quantize 4bit"


def check_fits(estimate: MemoryEstimate, available_bytes: int, where: str = "memory") -> None:
    """Raise DoesNotFit, with the numbers and a smaller suggestion, when the run cannot fit."""
    if estimate.total <= available_bytes:
        return
    raise DoesNotFit(
        f"this run needs about {fmt_bytes(estimate.total)} but only {fmt_bytes(available_bytes)} of "
        f"{where} is free ({estimate.describe()}); {suggest_smaller(estimate, available_bytes)}"
    )
