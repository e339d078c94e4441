"""The varlen attention path for packed rows (CUDA's flash kernel at run time) gives the same loss
and gradients as SDPA with transformers' block-diagonal mask. On CPU the kernel is replaced by a
reference that runs SDPA one example at a time; the plumbing around it (bounds from position ids,
layouts, grouped-query heads, the mask transformers then skips) is what is tested."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from localft.config import TrainSpec
from tests.training import chat_rows


@pytest.fixture
def reference_kernel():
    """Register the varlen implementation with the CPU reference kernel, for this test only."""
    from transformers import AttentionInterface

    from localft.backends.torch import attention

    AttentionInterface.register(
        attention.NAME, partial(attention.varlen_attention_forward, kernel=attention.reference_varlen)
    )
    yield attention.NAME
    AttentionInterface._global_mapping.pop(attention.NAME, None)


def test_bounds_come_from_restarting_positions():
    import torch

    from localft.backends.torch.attention import sequence_bounds

    pos = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 0, 1]])  # 3 examples, then 1 + padding
    bounds = sequence_bounds(pos)
    assert bounds["cu_seq_lens_q"].tolist() == [0, 3, 5, 6, 10, 12]
    assert bounds["max_length_q"] == 4


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # qwen2: grouped-query heads
def test_varlen_path_matches_the_masked_path(tiny_models, reference_kernel, arch):
    import torch
    from transformers import AutoTokenizer

    from localft.backends.torch import modeling
    from localft.backends.torch.loss import token_loss_sum
    from localft.data.chat_tokens import tokenize_row
    from localft.train.rows import collate, pack_examples

    spec = TrainSpec(model=str(tiny_models(arch)), device="cpu")
    tok = AutoTokenizer.from_pretrained(spec.model)
    rows = pack_examples([tokenize_row(tok, r, 128) for r in chat_rows(6)], 256)
    batch = collate(rows, tok.pad_token_id or 0)
    assert max(r.position_ids.count(0) for r in rows) >= 2  # rows really hold several examples

    results = []
    for implementation in ("sdpa", reference_kernel):
        original = modeling.attention_for
        modeling.attention_for = lambda *_: implementation  # noqa: B023 - used before the next loop
        try:
            model = modeling.build_lora_model(Path(spec.model), spec, modeling.Placement("cpu", "fp32"))
        finally:
            modeling.attention_for = original
        assert model.get_base_model().config._attn_implementation == implementation
        loss, n = token_loss_sum(model, batch, "cpu")
        (loss / n).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        results.append((float(loss.detach()), grads))

    (masked_loss, masked_grads), (varlen_loss, varlen_grads) = results
    assert varlen_loss == pytest.approx(masked_loss, rel=1e-5)
    for a, b in zip(masked_grads, varlen_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_varlen_is_chosen_only_where_it_runs(tiny_models):
    from transformers import AutoConfig

    from localft.backends.torch.attention import supports

    config = AutoConfig.from_pretrained(tiny_models("llama"))
    assert not supports(config, "cpu", "fp32", packing=True)  # CPU keeps SDPA with the mask
    assert not supports(config, "cuda", "bf16", packing=False)  # unpacked rows need no bounds
    config.sliding_window, config.use_sliding_window = 16, True
    assert not supports(config, "cuda", "bf16", packing=True)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_varlen_is_chosen_for_packed_rows_on_cuda_in_half_precision(tiny_models, arch):
    from transformers import AutoConfig

    from localft.backends.torch.attention import supports, varlen_kernel

    assert varlen_kernel() is not None  # this torch has the kernel (it runs on CUDA only)
    config = AutoConfig.from_pretrained(tiny_models(arch))
    assert supports(config, "cuda", "bf16", packing=True)
    assert supports(config, "cuda", "fp16", packing=True)
    assert not supports(config, "cuda", "fp32", packing=True)  # the flash kernel has no fp32


def test_the_training_model_gets_varlen_unless_sdpa_is_asked_for(tiny_models, monkeypatch):
    from transformers import AttentionInterface

    from localft.backends.torch import attention, modeling

    model_dir = tiny_models("llama")
    cuda_bf16 = modeling.Placement("cuda", "bf16")
    monkeypatch.delenv("LOCALFT_ATTENTION", raising=False)
    try:
        assert modeling.attention_for(model_dir, TrainSpec(model=str(model_dir)), cuda_bf16) == attention.NAME
        assert attention.NAME in AttentionInterface._global_mapping  # registered, so transformers takes it
        unpacked = TrainSpec(model=str(model_dir), packing=False)
        assert modeling.attention_for(model_dir, unpacked, cuda_bf16) == "sdpa"
        monkeypatch.setenv("LOCALFT_ATTENTION", "sdpa")
        assert modeling.attention_for(model_dir, TrainSpec(model=str(model_dir)), cuda_bf16) == "sdpa"
    finally:
        AttentionInterface._global_mapping.pop(attention.NAME, None)
