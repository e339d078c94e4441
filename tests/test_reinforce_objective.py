"""The reinforcement objective (written once, localft.train.reinforce) against TRL's own
GRPOTrainer._compute_loss on the same batch: loss and gradients for each loss type, with and
without a KL term, on-policy and with drafts from an older policy (where the clip acts); the same
math through MLX's and numpy's namespaces; and the group-relative advantages against TRL's."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from localft.backends.torch.preference import OPS  # noqa: E402
from localft.train.preference import NumpyOps  # noqa: E402
from localft.train.reinforce import (  # noqa: E402
    clip_range,
    group_advantages,
    micro_weight,
    reinforce_loss,
)

G, PROMPTS, T = 4, 2, 6
N = G * PROMPTS
MAX_DRAFT = 9  # dr_grpo's constant (TRL's max_completion_length), above the batch's longest


def _batch(seed: int = 0):
    """Per-token log-probs of N drafts (zeros past each draft's end), their masks, an older
    policy's log-probs (up to ~0.5 nats away, so some ratios leave the clip range), a reference's,
    and advantages."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(N, T)
    for row, length in enumerate([6, 4, 2, 5, 3, 6, 1, 5]):
        mask[row, length:] = 0
    logps = (-torch.rand(N, T, generator=g) * 3) * mask
    old = logps + (torch.rand(N, T, generator=g) - 0.5) * mask
    reference = logps + torch.randn(N, T, generator=g) * 0.3 * mask
    advantages = torch.randn(N, generator=g)
    return logps, mask, old, reference, advantages


class _Accelerator:
    num_processes = 1

    @staticmethod
    def gather(x):
        return x

    @staticmethod
    def reduce(x, reduction="sum"):
        return x


def trl_grpo(loss_type, beta, logps, mask, advantages, old=None, reference=None):
    """TRL's GRPOTrainer._compute_loss with its model's forward replaced by these log-probs."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    sequence = loss_type == "gspo"
    low, high = clip_range(loss_type)
    state = SimpleNamespace(
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, beta=beta,
        importance_sampling_level="sequence" if sequence else "token",
        loss_type="grpo" if sequence else loss_type, epsilon_low=low, epsilon_high=high,
        use_vllm=False, model=SimpleNamespace(training=True), current_gradient_accumulation_steps=1,
        max_completion_length=MAX_DRAFT, accelerator=_Accelerator(), _entropy_bonus_enabled=False,
        aux_loss_enabled=False, _metrics={"train": defaultdict(list)},
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
    )  # fmt: skip
    state._get_per_token_logps_and_entropies = lambda *a, **kw: (logps, torch.zeros_like(logps), None)
    inputs = {
        "prompt_ids": torch.ones(N, 3, dtype=torch.long), "prompt_mask": torch.ones(N, 3, dtype=torch.long),
        "completion_ids": torch.ones(N, T, dtype=torch.long), "completion_mask": mask.long(),
        "advantages": advantages, "num_items_in_batch": mask.sum(),
    }  # fmt: skip
    if old is not None:
        inputs["old_per_token_logps"] = old
    if reference is not None:
        inputs["ref_per_token_logps"] = reference
    return GRPOTrainer._compute_loss(state, None, inputs)


CASES = [
    (t, beta, off)
    for t in ("grpo", "dr_grpo", "dapo", "gspo")
    for beta in (0.0, 0.04)
    for off in (False, True)
]


@pytest.mark.parametrize(("loss_type", "beta", "off_policy"), CASES)
def test_objective_equals_trl(loss_type, beta, off_policy):
    logps, mask, old, reference, advantages = _batch()
    old = old if off_policy else None
    leaf = logps.clone().requires_grad_(True)
    ours = reinforce_loss(
        OPS, loss_type, leaf, mask, advantages, old, reference, beta, max_draft_tokens=MAX_DRAFT
    )
    theirs = trl_grpo(loss_type, beta, leaf, mask, advantages, old, reference if beta else None)
    (g_ours,) = torch.autograd.grad(ours.loss, leaf, retain_graph=True)
    (g_theirs,) = torch.autograd.grad(theirs, leaf)
    assert float(ours.loss.detach()) == pytest.approx(float(theirs.detach()), rel=1e-5, abs=1e-7)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-5, atol=1e-7), (g_ours, g_theirs)
    assert g_ours.abs().sum() > 0
    assert (g_ours * (1 - mask)).abs().sum() == 0  # no gradient past a draft's end
    if off_policy and loss_type != "gspo":
        assert float(ours.clipped) > 0  # the batch does exercise the clip


def test_dapo_over_micro_batches_is_the_step_loss():
    """dapo divides by the step's draft tokens: two micro-batches' losses (weighted as the loop
    weights them) add up to the whole batch's, gradients included."""
    logps, mask, old, _, advantages = _batch(1)
    leaf = logps.clone().requires_grad_(True)
    whole = reinforce_loss(OPS, "dapo", leaf, mask, advantages, old).loss
    tokens = float(mask.sum())
    halves = sum(
        micro_weight("dapo", 4, N)
        * reinforce_loss(OPS, "dapo", leaf[s], mask[s], advantages[s], old[s], tokens=tokens).loss
        for s in (slice(0, 4), slice(4, N))
    )
    assert float(halves.detach()) == pytest.approx(float(whole.detach()), rel=1e-6)
    grpo = sum(
        micro_weight("grpo", 4, N) * reinforce_loss(OPS, "grpo", leaf[s], mask[s], advantages[s], old[s]).loss
        for s in (slice(0, 4), slice(4, N))
    )
    assert float(grpo.detach()) == pytest.approx(
        float(reinforce_loss(OPS, "grpo", leaf, mask, advantages, old).loss.detach())
    )


def test_advantages_equal_trl():
    """Group-relative advantages as TRL forms them (scaled by the group's spread; dr_grpo not),
    and a group whose drafts all scored alike gets zeros."""
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([0.1, 0.9, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0])
    grouped = rewards.view(-1, G)
    mean = grouped.mean(1).repeat_interleave(G)
    std = nanstd(grouped, dim=1).repeat_interleave(G)
    theirs = (rewards - mean) / (std + 1e-4)
    assert np.allclose(group_advantages(rewards.numpy(), G), theirs.numpy(), atol=1e-6)
    assert np.allclose(group_advantages(rewards.numpy(), G, scale=False), (rewards - mean).numpy(), atol=1e-7)
    assert not group_advantages(rewards.numpy(), G)[G:].any()


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "gspo"])
def test_numpy_objective_equals_torch(loss_type):
    logps, mask, old, reference, advantages = _batch(2)
    values = [
        float(reinforce_loss(ops, loss_type, *(arr(x.numpy()) for x in (logps, mask, advantages, old, reference)),
                             beta=0.04).loss)
        for ops, arr in ((OPS, torch.as_tensor), (NumpyOps(), np.asarray))
    ]  # fmt: skip
    assert values[0] == pytest.approx(values[1], rel=1e-5)


@pytest.mark.mlx
@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "gspo"])
def test_mlx_objective_equals_torch(loss_type):
    mx = pytest.importorskip("mlx.core")
    from localft.backends.mlx.preference import OPS as MLX_OPS

    logps, mask, old, reference, advantages = _batch(3)
    rest = (mask, advantages, old, reference)
    leaf = logps.clone().requires_grad_(True)
    theirs = reinforce_loss(OPS, loss_type, leaf, *rest, beta=0.04, max_draft_tokens=MAX_DRAFT).loss
    (g_torch,) = torch.autograd.grad(theirs, leaf)
    arrays = [mx.array(x.numpy()) for x in rest]

    def loss(x):
        return reinforce_loss(MLX_OPS, loss_type, x, *arrays, beta=0.04, max_draft_tokens=MAX_DRAFT).loss

    value, g_mlx = mx.value_and_grad(loss)(mx.array(logps.numpy()))
    assert value.item() == pytest.approx(float(theirs.detach()), rel=1e-5)
    assert np.allclose(np.array(g_mlx), g_torch.numpy(), rtol=1e-4, atol=1e-6)
