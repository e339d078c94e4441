"""The MLX backend on mlx[cpu] with tiny random models: train, QLoRA, stop, kill -9 + resume, packing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("mlx_lm")

from localft.config import TrainSpec  # noqa: E402
from localft.events import Checkpoint, Eval, EventSink, Log, RunStarted, Step, read_events  # noqa: E402
from localft.runs import new_run  # noqa: E402

pytestmark = pytest.mark.mlx


def chat_rows(n: int, offset: int = 0) -> list[dict]:
    """Short, repetitive conversations: a tiny model can learn them in a few steps."""
    return [
        {"messages": [
            {"role": "system", "content": "You write short posts."},
            {"role": "user", "content": f"Write about topic {i + offset}."},
            {"role": "assistant", "content": f"Topic {i + offset} is great. I love it " + "yes " * (i % 4)},
        ]}
        for i in range(n)
    ]  # fmt: skip


def make_run(model_dir, n_train: int = 8, n_valid: int = 4, **overrides):
    settings = dict(
        model=str(model_dir), backend="mlx", steps=4, batch_size=2, max_seq_len=48, learning_rate=3e-3,
        warmup_steps=1, eval_every=2, eval_batches=1, save_every=2, log_every=1,
    )  # fmt: skip
    spec = TrainSpec(**{**settings, **overrides})
    run = new_run(spec)
    run.data_dir.mkdir()
    for split, rows in (("train", chat_rows(n_train)), ("valid", chat_rows(n_valid, 100))):
        run.split_path(split).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return spec, run


def train(spec, run, stop=lambda: False):
    from localft.backends import get_backend

    with EventSink(run.events_path) as sink:
        get_backend("mlx").train(spec, run, sink, stop)
    return read_events(run.events_path)


def adapter_arrays(folder):
    import mlx.core as mx
    import numpy as np

    return {k: np.array(v) for k, v in mx.load(str(folder / "adapters.safetensors")).items()}


def test_check_reports_mlx_on_this_machine():
    from localft.backends import get_backend
    from localft.hardware import is_apple_silicon

    avail = get_backend("mlx").check()
    assert avail.ok
    assert avail.device == ("gpu" if is_apple_silicon() else "cpu")


@pytest.mark.slow
def test_train_emits_events_and_writes_best_adapter(tiny_models):
    spec, run = make_run(tiny_models("llama"), steps=6, eval_every=3, save_every=3, learning_rate=1e-2)
    events = train(spec, run)
    started = [e for e in events if isinstance(e, RunStarted)]
    steps = [e for e in events if isinstance(e, Step)]
    evals = [e for e in events if isinstance(e, Eval)]
    assert started[0].device == "cpu" and started[0].total_steps == 6
    assert [s.step for s in steps] == [1, 2, 3, 4, 5, 6]
    assert steps[-1].loss < steps[0].loss
    assert all(s.peak_mem > 0 and s.tok_per_s > 0 for s in steps)
    assert steps[-1].tokens > steps[0].tokens > 0
    assert [e.step for e in evals] == [3, 6] and evals[-1].val_loss < evals[0].val_loss + 1e-6
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [3, 6]
    ckpt = run.checkpoint_path(6)
    assert {p.name for p in ckpt.iterdir()} >= {"adapters.safetensors", "optimizer.safetensors", "state.json"}
    # The exported adapter is the best by validation loss, in mlx-lm's layout.
    best = min(evals, key=lambda e: e.val_loss)
    config = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert config["lora_parameters"]["scale"] == spec.lora.alpha / spec.lora.rank
    best_ckpt = adapter_arrays(run.checkpoint_path(best.step))
    exported = adapter_arrays(run.adapter_dir)
    assert exported.keys() == best_ckpt.keys()
    assert all((exported[k] == best_ckpt[k]).all() for k in exported)


@pytest.mark.slow
def test_qlora_with_dora_trains_on_a_4bit_base(tiny_models):
    import mlx.nn as nn

    from localft.backends.mlx.modeling import load_base

    model, config = load_base(tiny_models("llama"), None, quantize=True)
    assert config["quantization"]["group_size"] == 64 and config["quantization"]["bits"] == 4
    assert isinstance(model.layers[0].self_attn.q_proj, nn.QuantizedLinear)

    spec, run = make_run(
        tiny_models("llama"), quantize="4bit", steps=4, learning_rate=1e-2, lora={"dora": False}
    )
    events = train(spec, run)
    steps = [e for e in events if isinstance(e, Step)]
    assert any("QLoRA" in e.message for e in events if isinstance(e, Log))
    assert len(steps) == 4 and steps[-1].loss < steps[0].loss
    assert (run.adapter_dir / "adapters.safetensors").is_file()


@pytest.mark.slow
def test_gradient_checkpointing_gives_the_same_losses(tiny_models):
    runs = [
        make_run(tiny_models("qwen2"), steps=2, eval_every=100, gradient_checkpointing=gc)
        for gc in (False, True)
    ]
    losses = [[e.loss for e in train(spec, run) if isinstance(e, Step)] for spec, run in runs]
    assert len(losses[0]) == 2
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


@pytest.mark.slow
def test_stop_checkpoints_and_writes_the_adapter(tiny_models):
    spec, run = make_run(tiny_models("qwen2"), steps=50, save_every=100, eval_every=100)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2  # polled once per step

    events = train(spec, run, stop)
    assert [e.step for e in events if isinstance(e, Step)] == [1, 2]
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [2]
    assert run.latest_checkpoint() == run.checkpoint_path(2)
    assert (run.adapter_dir / "adapters.safetensors").is_file()


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(tiny_models):
    import numpy as np

    overrides = dict(steps=4, save_every=2, eval_every=100, lora={"dropout": 0.1}, grad_accum=2)
    spec, reference = make_run(tiny_models("llama"), **overrides)
    ref_losses = [e.loss for e in train(spec, reference) if isinstance(e, Step)]

    _, run = make_run(tiny_models("llama"), **overrides)
    with open(run.log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "localft.worker", str(run.path)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )  # fmt: skip
    deadline = time.monotonic() + 240
    while run.latest_checkpoint() is None:
        assert worker.poll() is None, run.log_path.read_text()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    killed_at = int(run.latest_checkpoint().name.split("-")[1])
    assert killed_at < 4

    events = train(spec, run)
    resumed = [e for e in events if isinstance(e, RunStarted)][-1]
    assert resumed.resumed_from == killed_at
    losses = {e.step: e.loss for e in events if isinstance(e, Step)}  # the resumed run's steps win
    assert sorted(losses) == [1, 2, 3, 4]
    assert np.allclose([losses[s] for s in range(1, 5)], ref_losses, rtol=1e-5, atol=1e-6)
    a, b = adapter_arrays(reference.adapter_dir), adapter_arrays(run.adapter_dir)
    assert a.keys() == b.keys()
    assert all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)


def test_early_stopping_keeps_the_best_adapter(tiny_models):
    import mlx.core as mx
    from transformers import AutoTokenizer

    from localft.backends.mlx.batches import tokenize_split
    from localft.backends.mlx.loop import MlxTrainer
    from localft.backends.mlx.modeling import adapter_config, add_adapters, load_base

    spec, run = make_run(tiny_models("llama"), early_stopping_patience=2)
    tok = AutoTokenizer.from_pretrained(spec.model)
    examples = tokenize_split(tok, run.split_path("train"), spec.max_seq_len, spec.train_on)
    model, _ = load_base(spec.model, mx.float32, quantize=False)
    cfg = adapter_config(model, spec.lora)
    add_adapters(model, cfg)
    events = []
    trainer = MlxTrainer(spec, run, model, cfg, examples, examples, True, 0, events.append, "cpu")
    verdicts = []
    for step, val_loss in ((2, 3.0), (4, 2.5), (6, 2.6), (8, 2.7)):
        trainer.state.step = step
        verdicts.append(trainer._after_eval(val_loss))
    assert verdicts == [False, False, False, True]
    assert (trainer.state.best_step, trainer.state.best_val_loss) == (4, 2.5)
    assert any("early stopping" in e.message for e in events if isinstance(e, Log))
    assert trainer.state.stopped_early
    trainer.run_steps(lambda: False)  # a stopped-early run trains no further
    assert not [e for e in events if isinstance(e, Step)]
    assert (run.adapter_dir / "adapters.safetensors").is_file()


def test_packed_rows_give_the_same_loss_as_separate_examples(tiny_models):
    import mlx.core as mx
    import numpy as np
    from transformers import AutoTokenizer

    from localft.backends.mlx.batches import collate, eval_rows
    from localft.backends.mlx.loop import masked_loss
    from localft.backends.mlx.modeling import load_base, packing_supported
    from localft.data.chat_tokens import tokenize_row

    folder = tiny_models("llama")
    tok = AutoTokenizer.from_pretrained(folder)
    examples = [tokenize_row(tok, r, 49) for r in chat_rows(4)]
    model, config = load_base(folder, None, quantize=False)
    assert packing_supported(model, config) == (True, None)

    def loss(packed: bool) -> tuple[float, int]:
        rows = eval_rows(examples, 256, packed)
        assert len(rows) == (1 if packed else 4)
        b = collate(rows)
        total, n = masked_loss(
            model, mx.array(b.inputs), mx.array(b.targets), mx.array(b.segments), packed=packed
        )
        return total.item() / n.item(), n.item()

    (packed, n_packed), (single, n_single) = loss(True), loss(False)
    assert n_packed == n_single
    assert packed == pytest.approx(single, rel=1e-5)

    # Projecting only the trained positions to the vocabulary gives the same loss.
    b = collate(eval_rows(examples, 256, True))
    arrays = (mx.array(b.inputs), mx.array(b.targets), mx.array(b.segments))
    positions = mx.array(np.flatnonzero(b.targets != -100).astype(np.int32))
    total, n = masked_loss(model, *arrays, positions, packed=True)
    assert n.item() == n_packed and total.item() / n.item() == pytest.approx(packed, rel=1e-5)


def test_a_run_that_cannot_fit_is_refused_with_numbers(tiny_models):
    from localft.errors import DoesNotFit

    spec, run = make_run(tiny_models("llama"), batch_size=4096, max_seq_len=131072)
    with pytest.raises(DoesNotFit, match=r"needs about .* but only .* free"):
        train(spec, run)


def test_row_stream_resumes_at_its_position():
    from localft.backends.mlx.batches import RowStream
    from localft.data.chat_tokens import TokenizedExample

    examples = [TokenizedExample(list(range(i + 2)), list(range(i + 2))) for i in range(7)]
    stream = lambda position=0: RowStream(examples, 8, packing=True, seed=3, position=position)  # noqa: E731
    full = stream().take(30)
    head, tail = stream().take(13), stream(13).take(17)
    assert [r.inputs.tolist() for r in head + tail] == [r.inputs.tolist() for r in full]
    # Each epoch packs the same examples into rows of at most 8 tokens, in a new order.
    per_epoch = len(stream()._rows)
    first, second = full[:per_epoch], full[per_epoch : 2 * per_epoch]
    assert all(len(r) <= 8 for r in full)
    assert sum(len(r) for r in first) == sum(len(r) for r in second) == sum(range(1, 8))
    assert [r.inputs.tolist() for r in first] != [r.inputs.tolist() for r in second]


def test_resume_skips_a_damaged_checkpoint_and_matches_an_uninterrupted_run(tiny_models):
    overrides = dict(steps=4, save_every=1, eval_every=100, lora={"dropout": 0.1}, n_valid=0)
    spec, reference = make_run(tiny_models("llama"), **overrides)
    expected = {e.step: e.loss for e in train(spec, reference) if isinstance(e, Step)}

    _, run = make_run(tiny_models("llama"), **overrides)
    train(spec, run, stop=lambda: run.checkpoint_path(1).exists())  # polled after each step: stops at 2
    assert [p.name for p in run.checkpoints()] == ["step-000001", "step-000002"]
    optimizer = run.checkpoint_path(2) / "optimizer.safetensors"
    optimizer.write_bytes(optimizer.read_bytes()[:-8])

    events = train(spec, run)
    attempt = events[[i for i, e in enumerate(events) if isinstance(e, RunStarted)][-1] :]
    assert attempt[0].resumed_from == 1
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert any(
        m.startswith("skipped damaged checkpoint step-000002: optimizer.safetensors is") for m in warnings
    )
    losses = {e.step: e.loss for e in attempt if isinstance(e, Step)}
    assert sorted(losses) == [2, 3, 4]
    assert all(abs(losses[s] - expected[s]) < 1e-5 for s in (2, 3, 4)), (losses, expected)
