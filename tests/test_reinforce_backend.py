"""The torch backend's two generic pieces for reinforcement rounds, on a tiny real model with a
LoRA adapter: per-token log-probs of the drafts (equal to TRL's over the full logits, gradients
included, and summing to the per-sequence log-probs DPO uses), fed to the core's objective; and
drafts sampled by the adapted model, G per prompt, the same for the same seed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from localft.config import LoraSpec, TrainSpec  # noqa: E402
from localft.data.chat_tokens import IGNORE  # noqa: E402
from tests.test_preference_losses import completion_batch  # noqa: E402


@pytest.fixture(scope="module")
def session(tiny_models):
    from localft.backends.torch.modeling import Placement, build_lora_model

    folder = tiny_models("llama")
    spec = TrainSpec(model=str(folder), device="cpu", lora=LoraSpec(rank=4, alpha=8))
    model = build_lora_model(folder, spec, Placement("cpu", "fp32"), fused=False)
    torch.manual_seed(3)
    with torch.no_grad():  # a non-zero adapter, so drafting with it differs from the base
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(0.5 * torch.randn_like(p))
    model.train()
    return SimpleNamespace(model=model, device="cpu", where=Placement("cpu", "fp32"), liger=False)


def test_token_logps_equal_trl_and_sum_to_sequence_logps(session):
    from trl.trainer.utils import selective_log_softmax

    from localft.backends.torch import loss
    from localft.backends.torch.preference import sequence_logps

    batch = completion_batch()
    labels = batch.labels
    old = loss.CHUNK_ELEMENTS
    loss.CHUNK_ELEMENTS = 3 * session.model.get_output_embeddings().weight.shape[0]  # several chunks
    try:
        logps, mask = loss.token_logps(session.model, batch, "cpu")
    finally:
        loss.CHUNK_ELEMENTS = old
    ids = torch.as_tensor(batch.input_ids)
    logits = session.model(input_ids=ids).logits[:, :-1]
    trained = torch.as_tensor(labels[:, 1:] != IGNORE)
    theirs = selective_log_softmax(logits, ids[:, 1:]) * trained
    assert mask.tolist() == trained.float().tolist()
    # fp32 over a 49k vocabulary, chunked vs whole: another CPU's BLAS differs by ~1e-5
    assert torch.allclose(logps, theirs, atol=1e-4)
    sums, counts = sequence_logps(session.model, batch, "cpu")
    assert torch.allclose(logps.sum(1), sums, atol=1e-4) and counts.tolist() == mask.sum(1).tolist()
    lora = next(p for n, p in session.model.named_parameters() if "lora_A" in n)
    weights = torch.randn_like(logps)
    (g_ours,) = torch.autograd.grad((logps * weights).sum(), lora, retain_graph=True)
    (g_theirs,) = torch.autograd.grad((theirs * weights).sum(), lora)
    scale = g_theirs.abs().max()
    assert torch.allclose(g_ours, g_theirs, rtol=1e-3, atol=1e-4 * scale) and scale > 0


def test_the_objective_trains_through_the_backend(session):
    from localft.backends.torch.preference import accumulate_objective
    from localft.train.reinforce import reinforce_loss

    batch = completion_batch()
    advantages = [1.0, -0.5, -0.5]
    session.model.zero_grad()

    def objective(ops, logps, mask):
        return reinforce_loss(ops, "dapo", logps, mask, ops.asarray(advantages, logps))

    value = accumulate_objective(session, batch, objective, 1.0, per_token=True)
    grads = [p.grad for p in session.model.parameters() if p.requires_grad and p.grad is not None]
    assert np.isfinite(value) and grads and sum(float(g.abs().sum()) for g in grads) > 0
    session.model.zero_grad()


def test_drafts_are_seeded_and_come_from_the_adapted_model(session):
    from localft.backends.torch.preference import draft

    prompts = [[5, 17, 230, 41], [9, 88, 7]]
    stop = [2]
    first = draft(session, prompts, 4, 6, seed=11, stop_ids=stop)
    assert [len(g) for g in first] == [4, 4] and all(0 < len(d) <= 6 for g in first for d in g)
    assert draft(session, prompts, 4, 6, seed=11, stop_ids=stop) == first
    assert draft(session, prompts, 4, 6, seed=12, stop_ids=stop) != first
    assert len({tuple(d) for d in first[0]}) > 1  # sampled, not greedy: a group has spread
    with session.model.disable_adapter():
        base = draft(session, prompts, 4, 6, seed=11, stop_ids=stop)
    assert base != first
    assert session.model.training  # back in training mode after drafting


@pytest.mark.mlx
def test_mlx_drafts_are_seeded_and_come_from_the_adapted_model(tiny_models):
    pytest.importorskip("mlx_lm")

    from localft.backends.mlx.modeling import adapter_config, add_adapters, load_base
    from localft.backends.mlx.preference import draft

    model, _ = load_base(tiny_models("llama"), None, quantize=False)
    add_adapters(model, adapter_config(model, LoraSpec(rank=4, alpha=8)))
    session = SimpleNamespace(model=model)
    prompts, stop = [[5, 17, 230, 41], [9, 88, 7]], [2]
    before = draft(session, prompts, 4, 5, seed=11, stop_ids=stop)
    assert [len(g) for g in before] == [4, 4] and all(0 < len(d) <= 5 for g in before for d in g)
    assert draft(session, prompts, 4, 5, seed=11, stop_ids=stop) == before
    assert draft(session, prompts, 4, 5, seed=12, stop_ids=stop) != before
    assert len({tuple(d) for d in before[0]}) > 1
    model.update(_moved_lora(model))  # the same seed, another adapter: other tokens
    assert draft(session, prompts, 4, 5, seed=11, stop_ids=stop) != before
    assert model.training


def _moved_lora(model):
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    moved = [
        (k, mx.random.normal(v.shape) * 0.5)
        for k, v in tree_flatten(model.trainable_parameters())
        if "lora_b" in k
    ]
    return tree_unflatten(moved)
