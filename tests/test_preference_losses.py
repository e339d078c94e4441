"""The five preference losses (written once, localft.train.preference) against TRL's own code on
the same batch: loss and gradients, in torch and in MLX; and the torch backend's per-sequence
log-probs against TRL's on a tiny real model."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from localft.backends.torch.preference import OPS, sequence_logps  # noqa: E402
from localft.data.chat_tokens import IGNORE  # noqa: E402
from localft.train.preference import (  # noqa: E402
    SequenceLogps,
    UnpairedLogps,
    kto_loss,
    pair_loss,
    reward_accuracy,
)

B, T = 4, 7


def _batch(seed: int = 0):
    """Per-token log-probs of B chosen and B rejected completions (zeros where not trained), the
    completion masks, and the reference's per-sequence log-probs."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(2 * B, T)
    for row, length in enumerate([7, 5, 3, 6, 4, 7, 2, 5]):
        mask[row, length:] = 0
    token_logps = (-torch.rand(2 * B, T, generator=g) * 3) * mask
    reference = token_logps.sum(1) + torch.randn(2 * B, generator=g)
    return token_logps, mask, reference


class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather_for_metrics(x):
        return x

    gather = gather_for_metrics


def _outputs(token_logps):
    """What TRL's fused-head forward returns; only `log_probs` enters the loss."""
    zeros = torch.zeros_like(token_logps.detach())
    return SimpleNamespace(log_probs=token_logps, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())


def _trainer_state(**kw):
    return SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=_Accelerator(), aux_loss_enabled=False,
        precompute_ref_logps=True, _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None), **kw,
    )  # fmt: skip


def trl_dpo(loss_type: str, beta: float, token_logps, mask, reference):
    """TRL's DPOTrainer._compute_loss on these log-probs (its model replaced by its output)."""
    from trl.trainer.dpo_trainer import DPOTrainer

    state = _trainer_state(
        ld_alpha=None, f_divergence_type="reverse_kl", loss_types=[loss_type], loss_weights=[1.0],
        beta=beta, label_smoothing=0.0, use_weighting=False,
    )  # fmt: skip
    completion = torch.cat([torch.zeros(2 * B, 1), mask], dim=1).long()
    inputs = {
        "input_ids": torch.ones(2 * B, T + 1, dtype=torch.long),
        "attention_mask": torch.ones(2 * B, T + 1, dtype=torch.long),
        "completion_mask": completion,
        "ref_chosen_logps": reference[:B],
        "ref_rejected_logps": reference[B:],
    }
    return DPOTrainer._compute_loss(state, lambda **kw: _outputs(token_logps), inputs, False)


def _ours(method: str, beta: float, token_logps, mask, reference, ops=OPS):
    sums, lengths = token_logps.sum(1), mask.sum(1)
    policy = SequenceLogps(sums[:B], sums[B:], lengths[:B], lengths[B:])
    ref = SequenceLogps(reference[:B], reference[B:], lengths[:B], lengths[B:])
    return pair_loss(ops, method, beta, policy, ref)


def _same(ours, theirs, leaf) -> None:
    (g_ours,) = torch.autograd.grad(ours, leaf, retain_graph=True)
    (g_theirs,) = torch.autograd.grad(theirs, leaf)
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-5, abs=1e-7)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-5, atol=1e-7), (g_ours, g_theirs)
    assert g_ours.abs().sum() > 0


@pytest.mark.parametrize(("method", "loss_type", "beta"), [("dpo", "sigmoid", 0.1), ("ipo", "ipo", 0.1)])
def test_dpo_and_ipo_equal_trl(method, loss_type, beta):
    token_logps, mask, reference = _batch()
    leaf = token_logps.clone().requires_grad_(True)
    ours = _ours(method, beta, leaf, mask, reference)
    theirs = trl_dpo(loss_type, beta, leaf, mask, reference)
    _same(ours.loss, theirs, leaf)


def test_orpo_equals_trl():
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    token_logps, mask, reference = _batch(1)
    leaf = token_logps.clone().requires_grad_(True)
    ours = _ours("orpo", 0.1, leaf, mask, reference).loss
    avg = leaf.sum(1) / mask.sum(1)
    state = SimpleNamespace(beta=0.1, accelerator=_Accelerator())
    losses, *_ = ORPOTrainer.odds_ratio_loss(state, avg[:B], avg[B:])
    nll = -leaf[:B].sum() / mask[:B].sum()  # TRL's mean cross-entropy over the chosen tokens
    _same(ours, nll - losses.mean(), leaf)


def test_simpo_equals_trl():
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    token_logps, mask, reference = _batch(2)
    leaf = token_logps.clone().requires_grad_(True)
    ours = _ours("simpo", 2.0, leaf, mask, reference).loss
    avg = leaf.sum(1) / mask.sum(1)  # CPOTrainer averages per token for SimPO
    state = SimpleNamespace(
        beta=2.0,
        alpha=0.0,
        loss_type="simpo",
        simpo_gamma=0.5,
        label_smoothing=0.0,
        accelerator=_Accelerator(),
    )
    losses, *_ = CPOTrainer.cpo_loss(state, avg[:B], avg[B:])
    _same(ours, losses.mean(), leaf)  # cpo_alpha = 0: pure SimPO, no SFT term


def trl_kto(beta, token_logps, kl_token_logps, labels, reference, kl_reference):
    from trl.trainer.kto_trainer import KTOTrainer

    state = _trainer_state(beta=beta, calculate_KL=True, loss_type="kto", desirable_weight=1.0,
                           undesirable_weight=1.0)  # fmt: skip
    state._compute_kl_logps = lambda model, batch: KTOTrainer._compute_kl_logps(state, model, batch)
    n = token_logps.shape[0]
    ids, kl_ids = torch.ones(n, T + 1, dtype=torch.long), torch.full((n, T + 1), 2, dtype=torch.long)

    def model(input_ids, **kw):
        return _outputs(kl_token_logps if input_ids is kl_ids else token_logps)

    inputs = {
        "input_ids": ids, "attention_mask": torch.ones_like(ids), "completion_mask": torch.ones_like(ids),
        "KL_input_ids": kl_ids, "KL_attention_mask": torch.ones_like(ids),
        "KL_completion_mask": torch.ones_like(ids), "label": labels,
        "ref_logps": reference, "ref_KL_logps": kl_reference,
    }  # fmt: skip
    return KTOTrainer._compute_loss(state, model, inputs, False)


def test_kto_equals_trl():
    token_logps, mask, reference = _batch(3)
    kl_token_logps, _, kl_reference = _batch(4)
    kl_reference = kl_token_logps.sum(1) - 2.0  # a positive KL estimate, which enters the loss
    labels = torch.tensor([True, False, True, True, False, False, True, False])
    leaf = token_logps.clone().requires_grad_(True)
    policy = UnpairedLogps(leaf.sum(1), labels, kl_token_logps.sum(1))
    ref = UnpairedLogps(reference, labels, kl_reference)
    ours = kto_loss(OPS, 0.1, policy, ref)
    theirs = trl_kto(0.1, leaf, kl_token_logps, labels, reference, kl_reference)
    _same(ours.loss, theirs, leaf)
    # The KL estimate is clipped at 0 and carries no gradient: a KL batch far below the reference
    # gives the loss of a zero KL.
    low = kto_loss(OPS, 0.1, UnpairedLogps(leaf.sum(1), labels, kl_reference - 50), ref)
    zero = kto_loss(OPS, 0.1, UnpairedLogps(leaf.sum(1), labels, kl_reference), ref)
    assert float(low.loss.detach()) == pytest.approx(float(zero.loss.detach()))


@pytest.mark.mlx
@pytest.mark.parametrize("method", ["dpo", "ipo", "orpo", "simpo", "kto"])
def test_mlx_losses_equal_torch(method):
    """The same math through MLX's namespace: losses and gradients equal torch's (and so TRL's)."""
    mx = pytest.importorskip("mlx.core")
    from localft.backends.mlx.preference import OPS as MLX_OPS

    token_logps, mask, reference = _batch(5)
    labels = np.array([True, False, True, True, False, False, True, False])
    kl = reference.numpy() - 1.5

    def loss(ops, logps, lengths, ref, as_array):
        sums = logps.sum(1)
        if method == "kto":
            policy = UnpairedLogps(sums, as_array(labels), as_array(kl + 0.3))
            return kto_loss(ops, 0.1, policy, UnpairedLogps(ref, as_array(labels), as_array(kl))).loss
        pol = SequenceLogps(sums[:B], sums[B:], lengths[:B], lengths[B:])
        refs = SequenceLogps(ref[:B], ref[B:], lengths[:B], lengths[B:])
        return pair_loss(ops, method, 0.5, pol, refs).loss

    leaf = token_logps.clone().requires_grad_(True)
    theirs = loss(OPS, leaf, mask.sum(1), reference, torch.as_tensor)
    (g_torch,) = torch.autograd.grad(theirs, leaf)
    value, g_mlx = mx.value_and_grad(lambda x: loss(MLX_OPS, x, mx.array(mask.sum(1).numpy()),
                                                    mx.array(reference.numpy()), mx.array))(
        mx.array(token_logps.numpy())
    )  # fmt: skip
    assert value.item() == pytest.approx(float(theirs.detach()), rel=1e-5)
    assert np.allclose(np.array(g_mlx), g_torch.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["dpo", "ipo", "orpo", "simpo", "kto"])
def test_numpy_losses_equal_torch(method):
    """Validation scores held-out pairs on plain numbers: the same losses as training's."""
    from localft.train.preference import NumpyOps

    token_logps, mask, reference = _batch(6)
    labels = np.array([True, False, True, True, False, False, True, False])
    kl = reference.numpy() - 1.5
    values = []
    for ops, arrays in ((OPS, torch.as_tensor), (NumpyOps(), np.asarray)):
        sums, lengths, ref = (
            arrays(token_logps.sum(1).numpy()),
            arrays(mask.sum(1).numpy()),
            arrays(reference.numpy()),
        )
        if method == "kto":
            loss = kto_loss(ops, 0.1, UnpairedLogps(sums, arrays(labels), arrays(kl + 0.3)),
                            UnpairedLogps(ref, arrays(labels), arrays(kl))).loss  # fmt: skip
        else:
            loss = pair_loss(ops, method, 0.5, SequenceLogps(sums[:B], sums[B:], lengths[:B], lengths[B:]),
                             SequenceLogps(ref[:B], ref[B:], lengths[:B], lengths[B:])).loss  # fmt: skip
        values.append(float(loss))
    assert values[0] == pytest.approx(values[1], rel=1e-5)


def test_reward_accuracy_counts_wins():
    assert reward_accuracy([1.0, 0.2, 3.0, -1.0], [0.0, 0.5, 2.0, -2.0]) == 0.75


def completion_batch():
    """Three rows of a micro-batch (the training core's Batch): a 5-token prompt, then trained
    tokens; the second row shorter, padded."""
    from localft.train.rows import Batch

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 500, size=(3, 12))
    labels = ids.copy()
    labels[:, :5] = IGNORE  # the prompt
    labels[1, 9:] = IGNORE  # padding after a shorter row
    ids[1, 9:] = 0
    return Batch(ids, labels, np.tile(np.arange(ids.shape[1]), (ids.shape[0], 1)), int(ids.size))


def test_sequence_logps_equal_trl_on_a_real_model(tiny_models):
    """The torch backend's per-sequence log-probs of trained tokens (prompt and padding masked)
    equal TRL's get_batch_logps over the same model's full logits, gradients included."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_models("llama"), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    batch = completion_batch()
    ids, labels = batch.input_ids, batch.labels
    sums, counts = sequence_logps(model, batch, "cpu")
    logits = model(input_ids=torch.as_tensor(ids)).logits
    theirs = ORPOTrainer.get_batch_logps(logits, torch.as_tensor(labels))
    assert torch.allclose(sums, theirs, atol=1e-4)
    assert counts.tolist() == [7.0, 4.0, 7.0]
    lora = next(p for n, p in model.named_parameters() if "lora_A" in n)
    (g_ours,) = torch.autograd.grad(sums.sum(), lora, retain_graph=True)
    (g_theirs,) = torch.autograd.grad(theirs.sum(), lora)
    assert torch.allclose(g_ours, g_theirs, atol=1e-5)


def test_memory_estimate_counts_two_sequences_per_pair(tiny_models):
    from localft.config import TrainSpec
    from localft.plan.memory import estimate_memory

    folder = tiny_models("llama")
    sft, dpo, kto = (
        estimate_memory(TrainSpec(method=m, batch_size=2), folder) for m in ("sft", "dpo", "kto")
    )
    assert dpo.activations == 2 * sft.activations and kto.activations == sft.activations
    assert dpo.weights == sft.weights and dpo.total > sft.total
