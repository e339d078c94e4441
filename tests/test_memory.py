"""The memory estimate: parameter counts match real models, terms move the right way, refusals say why."""

from __future__ import annotations

import pytest

from localft.config import TrainSpec
from localft.errors import DoesNotFit
from localft.plan.catalog import catalog_entry
from localft.plan.memory import check_fits, estimate_memory, lora_params, model_shape


@pytest.mark.parametrize("arch", ["llama", "qwen3", "mistral"])
def test_parameter_counts_match_the_real_models(tiny_models, arch):
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from localft.backends.torch.modeling import lora_config

    folder = tiny_models(arch)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    shape = model_shape(folder)
    assert shape.params == sum(p.numel() for p in model.parameters())
    spec = TrainSpec(model=str(folder))
    peft_model = get_peft_model(model, lora_config(spec.lora, shape.layers))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_params(spec, shape) == trainable


def test_terms_follow_the_settings(tiny_models):
    folder = tiny_models("llama")
    base = TrainSpec(model=str(folder), batch_size=4, max_seq_len=512)
    est = estimate_memory(base, folder, "cpu")
    assert est.total == est.weights + est.lora + est.optimizer + est.activations + est.overhead
    double = estimate_memory(base.model_copy(update={"batch_size": 8}), folder, "cpu")
    assert double.activations == 2 * est.activations and double.weights == est.weights
    ckpt = estimate_memory(base.model_copy(update={"gradient_checkpointing": True}), folder, "cpu")
    assert ckpt.activations < est.activations
    nf4 = estimate_memory(base.model_copy(update={"quantize": "4bit"}), folder, "cuda")
    bf16 = estimate_memory(base, folder, "cuda")
    assert nf4.weights < bf16.weights < est.weights  # fp32 on CPU, bf16 on CUDA, NF4 smallest


def test_catalog_entry_gives_a_plausible_estimate():
    entry = catalog_entry("qwen2.5-1.5b")
    est = estimate_memory(TrainSpec(model="qwen2.5-1.5b", quantize="4bit", batch_size=1), entry, "cuda")
    assert 0.8e9 < est.weights < 2.0e9  # 1.5B params in NF4 with bf16 embeddings


def test_check_fits_refuses_with_numbers_and_a_smaller_plan(tiny_models):
    folder = tiny_models("llama")
    est = estimate_memory(TrainSpec(model=str(folder), batch_size=64, max_seq_len=2048), folder, "cpu")
    check_fits(est, est.total)  # exactly enough is enough
    budget = est.total - est.activations // 2
    with pytest.raises(DoesNotFit) as info:
        check_fits(est, budget, "RAM")
    message = str(info.value)
    assert "needs about" in message and "RAM" in message and "activations" in message
    assert "--batch-size 32 with --grad-accum x2" in message  # half the micro-batch just fits
    with pytest.raises(DoesNotFit, match="--batch-size 16 with --grad-accum x4"):
        check_fits(est, budget - 1)
    with pytest.raises(DoesNotFit, match="smaller model or --quantize 4bit"):
        check_fits(est, est.weights // 2)


# Peaks bench/memory_estimate.py measured on torch (CPU, fp32, the worker's peak RSS): the embedded
# model on rows of exactly max_seq_len tokens (bench/RESULTS.md, "Memory estimate vs measured peak").
MEASURED_PEAK = {
    ("sft", 4, 512): 4_786_036_736,
    ("dpo", 1, 512): 3_012_468_736,
    ("dpo", 2, 512): 4_782_596_096,  # 4 rows x 512 tokens
    ("dpo", 4, 512): 8_207_040_512,  # 4 pairs: the round the old constants planned at ~12.2 GiB
}


@pytest.mark.parametrize(("method", "batch", "seq"), list(MEASURED_PEAK))
def test_the_plan_is_within_a_quarter_of_the_measured_peak(method, batch, seq):
    """A DPO round of 4 rows x 512 tokens was planned at 1.68x its peak, which refuses rounds that
    fit; an estimate far under the peak would let a run swap or be killed."""
    spec = TrainSpec(model="embedded", method=method, batch_size=batch, max_seq_len=seq)
    estimate = estimate_memory(spec, catalog_entry("embedded"), "cpu")
    assert 0.75 <= estimate.total / MEASURED_PEAK[(method, batch, seq)] <= 1.25


def test_shorter_rows_save_at_least_in_proportion():
    """Half the rows: half the activations; rows half as long: a little more than half saved (the
    per-token term dominates; the score matrix of masked rows goes with the square)."""
    entry = catalog_entry("embedded")
    spec = TrainSpec(model="embedded", batch_size=4, max_seq_len=512)
    full = estimate_memory(spec, entry, "cpu").activations
    fewer = estimate_memory(spec.model_copy(update={"batch_size": 2}), entry, "cpu").activations
    shorter = estimate_memory(spec.model_copy(update={"max_seq_len": 256}), entry, "cpu").activations
    assert fewer == full // 2 and 0.4 < shorter / full < 0.5
    cuda = estimate_memory(spec, entry, "cuda").activations  # flash attention: no score matrix
    assert (
        estimate_memory(spec.model_copy(update={"max_seq_len": 256}), entry, "cuda").activations == cuda // 2
    )
