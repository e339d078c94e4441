"""The MLX glue under the one training loop on mlx[cpu] (the loop itself: test_train_contract.py):
availability, QLoRA/DoRA on a 4-bit base, gradient checkpointing, the chunked loss against full
logits, and resume past a damaged MLX optimizer file."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_lm")

from localft.events import Log, RunStarted, Step  # noqa: E402
from tests.training import make_run, train_run  # noqa: E402

pytestmark = pytest.mark.mlx
MLX = dict(backend="mlx", max_seq_len=64, eval_every=100, save_every=100, log_every=1)


def test_check_reports_mlx_on_this_machine():
    from localft.backends import get_backend
    from localft.plan.hardware import is_apple_silicon

    avail = get_backend("mlx").check()
    assert avail.ok
    assert avail.device == ("gpu" if is_apple_silicon() else "cpu")


@pytest.mark.slow
def test_qlora_with_dora_trains_on_a_4bit_base(tmp_path, tiny_models):
    import mlx.nn as nn

    from localft.backends.mlx.modeling import load_base

    model, config = load_base(tiny_models("llama"), None, quantize=True)
    assert config["quantization"]["group_size"] == 64 and config["quantization"]["bits"] == 4
    assert isinstance(model.layers[0].self_attn.q_proj, nn.QuantizedLinear)

    spec, run = make_run(tmp_path, tiny_models("llama"), quantize="4bit", steps=4, learning_rate=1e-2,
                         lora={"dora": True}, n_valid=0, **MLX)  # fmt: skip
    events = train_run(spec, run)
    steps = [e for e in events if isinstance(e, Step)]
    assert any("QLoRA" in e.message for e in events if isinstance(e, Log))
    assert len(steps) == 4 and steps[-1].loss < steps[0].loss
    assert (run.adapter_dir / "adapters.safetensors").is_file()


@pytest.mark.slow
def test_gradient_checkpointing_gives_the_same_losses(tmp_path, tiny_models):
    runs = [
        make_run(
            tmp_path / str(gc), tiny_models("qwen2"), steps=2, n_valid=0, gradient_checkpointing=gc, **MLX
        )
        for gc in (False, True)
    ]
    losses = [[e.loss for e in train_run(spec, run) if isinstance(e, Step)] for spec, run in runs]
    assert len(losses[0]) == 2
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_chunked_cross_entropy_matches_full_logits(monkeypatch, softcap):
    """Loss and hidden-state gradient of the chunked projection + cross-entropy (each chunk
    recomputed in backward) equal those of the full logits tensor, over uneven chunks."""
    import mlx.core as mx
    import mlx.nn as nn

    from localft.backends.mlx import loss as loss_module

    vocab, dim, n = 1000, 32, 37
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", vocab * 8)  # 8 positions a chunk: 5 chunks
    mx.random.seed(0)
    linear = nn.Linear(dim, vocab)

    def head(h):
        logits = linear(h)
        return mx.tanh(logits / softcap) * softcap if softcap else logits

    hidden = mx.random.normal((n, dim))
    targets = mx.random.randint(0, vocab, (n,))
    weights = (mx.arange(n) % 3 != 0).astype(mx.float32)  # some positions untrained

    def full(h):
        return (nn.losses.cross_entropy(head(h).astype(mx.float32), targets) * weights).sum()

    def chunked(h):
        return loss_module.chunked_cross_entropy(head, vocab, h, targets, weights)

    want, want_grad = mx.value_and_grad(full)(hidden)
    got, got_grad = mx.value_and_grad(chunked)(hidden)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert np.allclose(np.array(got_grad), np.array(want_grad), rtol=1e-4, atol=1e-6)


def test_resume_skips_a_damaged_checkpoint_and_matches_an_uninterrupted_run(tmp_path, tiny_models):
    overrides = dict(steps=4, save_every=1, lora={"dropout": 0.1}, n_valid=0, batch_size=2)
    overrides = {**MLX, **overrides}
    spec, reference = make_run(tmp_path / "a", tiny_models("llama"), **overrides)
    expected = {e.step: e.loss for e in train_run(spec, reference) if isinstance(e, Step)}

    spec, run = make_run(tmp_path / "b", tiny_models("llama"), **overrides)
    train_run(spec, run, stop=lambda: run.checkpoint_path(2).exists())  # polled before each step
    assert [p.name for p in run.checkpoints()] == ["step-000001", "step-000002"]
    optimizer = run.checkpoint_path(2) / "optimizer.safetensors"
    optimizer.write_bytes(optimizer.read_bytes()[:-8])

    events = train_run(spec, run)
    attempt = events[[i for i, e in enumerate(events) if isinstance(e, RunStarted)][-1] :]
    assert attempt[0].resumed_from == 1
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert any(
        m.startswith("skipped damaged checkpoint step-000002: optimizer.safetensors is") for m in warnings
    )
    losses = {e.step: e.loss for e in attempt if isinstance(e, Step)}
    assert sorted(losses) == [2, 3, 4]
    assert all(abs(losses[s] - expected[s]) < 1e-5 for s in (2, 3, 4)), (losses, expected)


@pytest.fixture
def mlx_memory_limit():
    """MLX's memory limit as it was, restored after the test."""
    import mlx.core as mx

    before = mx.get_memory_limit()
    yield
    mx.set_memory_limit(before)


@pytest.mark.parametrize(
    ("unified_gib", "limit_gib"),
    [(8, 6.0), (16, 13.6), (64, 54.4)],  # headroom: 2 GiB, or 15% where that is more
    ids=["mac-8GiB", "mac-16GiB", "mac-64GiB"],
)
def test_the_memory_limit_is_unified_memory_less_headroom(
    monkeypatch, mlx_memory_limit, unified_gib, limit_gib
):
    import mlx.core as mx

    from localft.backends.mlx import modeling

    # What Metal reports on a Mac of that size (mlx[cpu] reports no memory size).
    info = {"architecture": "applegpu_g15s", "memory_size": unified_gib * 2**30}
    monkeypatch.setattr(modeling.mx, "device_info", lambda: info)
    limit = modeling.set_memory_limit()
    assert limit / 2**30 == pytest.approx(limit_gib, abs=1e-6)
    assert mx.get_memory_limit() == limit  # really set on MLX, not only computed


@pytest.mark.slow
def test_on_mlx_cpu_the_limit_comes_from_the_ram_and_the_run_log_says_it(
    tmp_path, tiny_models, mlx_memory_limit
):
    import mlx.core as mx

    from localft.backends.mlx.modeling import set_memory_limit
    from localft.disk import fmt_bytes
    from localft.plan.hardware import machine_info

    ram = machine_info().ram_bytes
    limit = set_memory_limit()
    assert limit == int(ram - max(2 * 2**30, ram * 0.15)) and mx.get_memory_limit() == limit

    spec, run = make_run(tmp_path, tiny_models("llama"), steps=1, n_valid=0, **MLX)
    said = [e.message for e in train_run(spec, run) if isinstance(e, Log)]
    assert any(m.startswith("MLX on cpu: ") and f"memory limit {fmt_bytes(limit)}" in m for m in said), said
