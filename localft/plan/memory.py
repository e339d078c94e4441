"""A memory estimate for a LoRA/QLoRA or full fine-tuning run (weights + adapters + optimizer +
activations), made before loading anything, so a run that cannot fit is refused with the numbers
and a smaller plan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localft.config import TrainSpec
from localft.disk import fmt_bytes
from localft.errors import DoesNotFit
from localft.plan.catalog import CatalogModel
from localft.plan.model_shapes import Linear, ModelShape, shape_from_config

# Bytes per parameter of the frozen base. NF4 with double quantization stores 4 bits plus
# ~0.127 bits of scales per weight; embeddings and norms stay at the compute dtype.
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "nf4": 0.5 + 0.127 / 8}
# Activations kept for backward per token per layer, in units of hidden x dtype bytes. Measured
# (bench/memory_estimate.py; bench/RESULTS.md, "Memory estimate vs measured peak"): torch on CPU,
# fp32, the embedded SmolLM2-135M with LoRA r=8 on every linear layer, rows of exactly 512 tokens;
# the peaks at 2 and 4 rows differ by 884 MB a row, 1.73 MB a token = 25 x 576 x 4 B x 30 layers.
ACTIVATION_FACTOR = 25
# Python, the framework, the tokenizer and the loaded data beside the model and its batch: on CPU
# the peak RSS less the other terms, ~410-450 MiB on torch and ~330 MiB on MLX (whose own
# mx.get_peak_memory leaves it out). The CUDA context (not measured here) is of that size too.
OVERHEAD_BYTES = 400 * 1024**2
# How much of a score matrix (heads x seq x seq, per layer) attention keeps for backward. CPU,
# measured on torch: packed 512-token rows (several examples apart by a mask) peaked 157-290 MB a
# row above their tokens' share, 9 heads x 512^2 x 4 B x 30 layers = 283 MB, and rows of one
# example without padding ~0 (the flash kernel); a plan cannot know its rows, so half. MPS is not
# measured here: materialized, as without a fused kernel. CUDA: flash / varlen kernels, none.
SCORES_KEPT = {"cpu": 0.5, "mps": 1.0, "cuda": 0.0}
# Logits the loss holds at once, in fp32 elements (64 MiB; 64 positions of Gemma's 262k vocabulary):
# both backends project to the vocabulary a chunk of positions at a time, never all of them.
LOSS_CHUNK_ELEMENTS = 16 * 1024**2
# A chunk's logits, their softmax gradient and the matmul's output: a constant, not per row.
LOSS_BYTES = 3 * LOSS_CHUNK_ELEMENTS * 4


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    lora: int
    optimizer: int  # optimizer states + gradients of what is trained (adapters, or every weight)
    activations: int
    overhead: int
    # What the activation term is made of, so check_fits can suggest a smaller run.
    batch_size: int
    seq_len: int
    activation_per_row: int
    full: bool = False  # full fine-tuning: the optimizer term covers every weight
    reference: int = 0  # a grpo round's KL term: the kept copy of the start's trained weights

    @property
    def total(self) -> int:
        return self.weights + self.lora + self.optimizer + self.reference + self.activations + self.overhead

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
        trained = (
            f"optimizer states and gradients of all weights {fmt_bytes(self.optimizer)}"
            if self.full
            else f"LoRA {fmt_bytes(self.lora)} + optimizer {fmt_bytes(self.optimizer)}"
        )
        if self.reference:
            trained += f" + KL reference copy {fmt_bytes(self.reference)}"
        return (
            f"weights {fmt_bytes(self.weights)} + {trained} + activations {fmt_bytes(self.activations)} "
            f"(batch {self.batch_size} x {self.seq_len} tokens) + runtime {fmt_bytes(self.overhead)} "
            f"= {fmt_bytes(self.total)}"
        )


def model_shape(model: Path | str | CatalogModel | dict) -> ModelShape:
    """The shape of a model folder, a catalog entry (its real config's numbers) or a config dict."""
    if isinstance(model, CatalogModel):
        return shape_from_config(model.config)
    if isinstance(model, dict):
        return shape_from_config(model)
    return shape_from_config(json.loads((Path(model) / "config.json").read_text(encoding="utf-8")))


def lora_params(spec: TrainSpec, s: ModelShape) -> int:
    """Adapter parameters: rank × (in + out) for each adapted projection (DoRA adds `out`), over
    the adapted blocks; 'all-linear' also adapts linear layers outside the blocks (as peft does)."""
    lora = spec.lora
    layers = min(lora.num_layers or s.layers, s.layers)

    def chosen(linears) -> list[Linear]:
        return (
            list(linears) if lora.targets == "all-linear" else [x for x in linears if x.name in lora.targets]
        )

    picked = [x for block in s.block_linears[s.layers - layers :] for x in chosen(block)]
    if layers == s.layers:
        picked += chosen(s.outer_linears)
    return sum(lora.rank * (x.n_in + x.n_out) + (x.n_out if lora.dora else 0) for x in picked)


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
    full = spec.weights == "full"
    if full:  # fp32 master weights: the optimizer updates them while autocast computes in `dtype`
        weights = int(s.params * WEIGHT_BYTES["fp32"])
    n_lora = 0 if full else lora_params(spec, s)
    lora = n_lora * 4  # adapters are kept in fp32
    # AdamW: two fp32 moments (8-bit paged AdamW on CUDA QLoRA: two bytes) + an fp32 gradient, for
    # each adapter weight or, in full fine-tuning, each weight of the model.
    state = 2 if (spec.quantize == "4bit" and device == "cuda") else 8
    optimizer = s.params * (8 + 4) if full else n_lora * (state + 4)
    seq = spec.max_seq_len
    if spec.gradient_checkpointing:  # one hidden state per layer kept, one layer recomputed
        per_token = (s.layers * s.hidden + ACTIVATION_FACTOR * s.hidden) * act_bytes
    else:
        per_token = ACTIVATION_FACTOR * s.hidden * act_bytes * s.layers
    scores = (
        SCORES_KEPT[device]
        * s.heads
        * seq
        * seq
        * act_bytes
        * (1 if spec.gradient_checkpointing else s.layers)
    )
    # A preference example is a chosen and a rejected sequence, both through the graph at once;
    # a reinforcement request its G drafts.
    from localft.train.preference import sequences_per_example

    per_row = int(per_token * seq + scores) * sequences_per_example(spec.method, spec.group_size)
    # grpo with a KL term keeps a copy of what trains (fp32) as its reference policy.
    reference = (s.params * 4 if full else lora) if spec.method == "grpo" and spec.beta else 0
    return MemoryEstimate(
        weights=weights,
        lora=lora,
        optimizer=optimizer,
        activations=per_row * spec.batch_size,
        overhead=OVERHEAD_BYTES + min(LOSS_BYTES, 3 * 4 * seq * spec.batch_size * s.vocab),
        batch_size=spec.batch_size,
        seq_len=seq,
        activation_per_row=per_row,
        full=full,
        reference=reference,
    )


def per_process(estimate: MemoryEstimate, world_size: int, sharding: str) -> MemoryEstimate:
    """What each of `world_size` processes needs: FSDP shards the weights, adapters and optimizer
    states over them (a layer gathered at a time is left in the slack); DDP keeps its own copy of
    the gradients (its all-reduce buckets) beside the model's."""
    from dataclasses import replace

    if sharding == "fsdp":
        n = max(world_size, 1)
        return replace(
            estimate, weights=-(-estimate.weights // n), lora=-(-estimate.lora // n),
            optimizer=-(-estimate.optimizer // n),
        )  # fmt: skip
    if world_size > 1:
        gradients = estimate.weights if estimate.full else estimate.lora
        return replace(estimate, optimizer=estimate.optimizer + gradients)
    return estimate


# The run the catalog's memory figures describe: micro-batch 1 x 1024 tokens with gradient
# checkpointing (what fits a model on a small GPU), LoRA rank 8 on every linear layer, on a CUDA
# GPU in bf16 (LoRA) and on an NF4 base (QLoRA).
CATALOG_RUN = {"batch_size": 1, "max_seq_len": 1024, "gradient_checkpointing": True}


def catalog_memory(entry: CatalogModel) -> dict[str, int]:
    spec = TrainSpec(model=entry.name, **CATALOG_RUN)
    return {
        "lora_bf16": estimate_memory(spec, entry, "cuda").total,
        "qlora_4bit": estimate_memory(spec.model_copy(update={"quantize": "4bit"}), entry, "cuda").total,
    }


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
    if estimate.full:
        return "full fine-tuning keeps optimizer states for every weight: pick a smaller model or LoRA (--set weights=lora)"
    return "the weights alone do not fit: pick a smaller model or --quantize 4bit"


def check_fits(estimate: MemoryEstimate, available_bytes: int, where: str = "memory") -> None:
    """Raise DoesNotFit, with the numbers and a smaller suggestion, when the run cannot fit."""
    if estimate.total <= available_bytes:
        return
    raise DoesNotFit(
        f"this run needs about {fmt_bytes(estimate.total)} but only {fmt_bytes(available_bytes)} of "
        f"{where} is free ({estimate.describe()}); {suggest_smaller(estimate, available_bytes)}"
    )
