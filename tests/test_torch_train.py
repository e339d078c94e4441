"""The torch glue under the one training loop (the loop itself: test_train_contract.py): QLoRA on an
NF4 base, the fused LoRA layer against peft's, and the chunked loss against full logits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from localft.config import TrainSpec
from localft.events import Step
from tests.training import Hooked, chat_rows, make_run, train_run


def test_qlora_4bit_trains_on_cpu(tmp_path, tiny_models):
    spec, run = make_run(tmp_path, tiny_models("llama"), steps=3, quantize="4bit", n_valid=0)
    kinds = set()
    hooked = Hooked("torch", lambda s: kinds.update(type(m).__name__ for m in s.model.modules()))
    steps = [e for e in train_run(spec, run, backend=hooked) if isinstance(e, Step)]
    assert "Linear4bit" in kinds  # the frozen base really is NF4
    assert len(steps) == 3 and all(math.isfinite(s.loss) for s in steps)
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()


def _packed_batch(tok, n: int = 4):
    from localft.data.chat_tokens import tokenize_row
    from localft.train.rows import collate, pack_examples

    return collate(pack_examples([tokenize_row(tok, r, 128) for r in chat_rows(n)], 256), 0)


def test_fused_lora_matches_peft(tiny_models):
    """The fused layer computes peft's LoRA exactly: same loss and gradients for the same weights."""
    import torch
    from transformers import AutoTokenizer

    from localft.backends.torch.loss import token_loss_sum
    from localft.backends.torch.modeling import Placement, build_lora_model

    spec = TrainSpec(model=str(tiny_models("qwen2")), device="cpu")
    where = Placement("cpu", "fp32")
    models = [build_lora_model(Path(spec.model), spec, where, fused=f) for f in (False, True)]
    layer = models[1].get_base_model().model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "FusedLoraLinear"
    batch = _packed_batch(AutoTokenizer.from_pretrained(spec.model))
    torch.manual_seed(1)
    trained = [[p for p in m.parameters() if p.requires_grad] for m in models]
    with torch.no_grad():
        for a, b in zip(*trained, strict=True):
            a.normal_(0, 0.05)
            b.copy_(a)
    results = []
    for m in models:
        s, n = token_loss_sum(m, batch, "cpu")
        (s / n).backward()
        results.append((float(s.detach() / n), [p.grad for p in m.parameters() if p.requires_grad]))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-5)
    for g0, g1 in zip(results[0][1], results[1][1], strict=True):
        assert torch.allclose(g0, g1, atol=1e-5)


@pytest.mark.parametrize("softcap", [None, 30.0])
@pytest.mark.parametrize("trainable_head", [False, True])
def test_chunked_cross_entropy_matches_full_logits(monkeypatch, softcap, trainable_head):
    """Loss and gradients (hidden states, and the output layer's when it trains) of the chunked
    projection + cross-entropy equal those of the full logits tensor, with chunks that do not divide
    the positions evenly, and with Gemma's final-logit soft cap."""
    import torch

    from localft.backends.torch import loss as loss_module

    torch.manual_seed(0)
    vocab, dim, n = 1000, 32, 37
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", vocab * 8)  # 8 positions a chunk: 5 chunks
    hidden = torch.randn(n, dim, dtype=torch.float32, requires_grad=True)
    weight = torch.randn(vocab, dim, dtype=torch.float32, requires_grad=trainable_head)
    bias = torch.randn(vocab)
    targets = torch.randint(0, vocab, (n,))

    def full():
        logits = torch.nn.functional.linear(hidden, weight, bias)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return torch.nn.functional.cross_entropy(logits, targets, reduction="sum")

    results = []
    for fn in (full, lambda: loss_module.linear_cross_entropy(hidden, weight, bias, targets, softcap)):
        hidden.grad = weight.grad = None
        value = fn()
        (value * 0.5).backward()  # a scaled loss, as accumulation scales it
        results.append(
            (value.detach(), hidden.grad.clone(), None if weight.grad is None else weight.grad.clone())
        )
    (want, want_h, want_w), (got, got_h, got_w) = results
    assert torch.allclose(got, want, rtol=1e-5)
    assert torch.allclose(got_h, want_h, rtol=1e-4, atol=1e-6)
    assert (got_w is None) == (not trainable_head)
    if trainable_head:
        assert torch.allclose(got_w, want_w, rtol=1e-4, atol=1e-6)
    with torch.no_grad():  # evaluation: no gradient work, the same value
        value = loss_module.linear_cross_entropy(hidden, weight, bias, targets, softcap)
    assert torch.allclose(value, want, rtol=1e-5)
