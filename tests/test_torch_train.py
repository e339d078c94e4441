"""The torch backend trains tiny models on CPU: LoRA, QLoRA (NF4), packing, stop, NaN, memory refusal."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from localft.config import TrainSpec
from localft.errors import DoesNotFit, RunError
from localft.events import Checkpoint, Eval, EventSink, Log, RunStarted, Step, read_events
from localft.runs import new_run

TOPICS = ["coffee", "rust", "hiking", "startups", "jazz", "gardens", "trains", "chess"]


def chat_rows(n: int, seed: int = 0) -> list[dict]:
    """Repetitive chat rows: a tiny model can learn them within a few steps."""
    rows = []
    for i in range(n):
        topic = TOPICS[(i + seed) % len(TOPICS)]
        reply = f"I love {topic}. " * (1 + i % 4) + "That is all."
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "You are Ann."},
                    {"role": "user", "content": f"Write about {topic}."},
                    {"role": "assistant", "content": reply},
                ]
            }
        )
    return rows


def make_run(tmp_path: Path, model_dir: Path, n_train: int = 24, n_valid: int = 6, **overrides):
    """A run folder with small train/valid splits and a CPU spec for `model_dir`."""
    fields = dict(
        model=str(model_dir), device="cpu", steps=6, batch_size=2, max_seq_len=128,
        learning_rate=2e-3, warmup_steps=1, eval_every=3, save_every=3, seed=0,
    )  # fmt: skip
    fields.update(overrides)
    spec = TrainSpec(**fields)
    run = new_run(spec, root=tmp_path / "runs")
    run.data_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run.split_path("train"), chat_rows(n_train))
    if n_valid:
        write_jsonl(run.split_path("valid"), chat_rows(n_valid, seed=3))
    return spec, run


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def train_run(spec, run, stop=lambda: False):
    from localft.backends.torch import TorchBackend

    with EventSink(run.events_path) as sink:
        TorchBackend().train(spec, run, sink, stop)
    return read_events(run.events_path)


def test_lora_trains_and_reports(tmp_path, tiny_models):
    spec, run = make_run(tmp_path, tiny_models("llama"), steps=9)
    events = train_run(spec, run)

    assert isinstance(events[0], RunStarted) and events[0].device == "cpu"
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.step for s in steps] == list(range(1, 10))
    assert all(math.isfinite(s.loss) and s.tok_per_s > 0 and s.peak_mem > 0 for s in steps)
    assert steps[-1].tokens > steps[0].tokens
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e.step for e in evals] == [3, 6, 9]
    assert evals[-1].val_loss < evals[0].val_loss
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [3, 6, 9]
    assert (run.adapter_dir / "adapter_config.json").is_file()
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert state["step"] == 9 and state["best_step"] == 9 and state["position"] == 9 * 2


def test_packed_examples_do_not_see_each_other(tiny_models):
    """Loss of example B is the same alone and packed after example A in one row."""
    import torch
    from transformers import AutoTokenizer

    from localft.backends.torch.data import Row, collate, pack_examples
    from localft.backends.torch.modeling import build_lora_model, placement, token_loss_sum
    from localft.data.chat_tokens import IGNORE, tokenize_row

    spec = TrainSpec(model=str(tiny_models("llama")), device="cpu")
    tok = AutoTokenizer.from_pretrained(spec.model)
    model = build_lora_model(Path(spec.model), spec, placement(spec)).eval()
    a, b = (tokenize_row(tok, row, 128) for row in chat_rows(2))
    packed = pack_examples([a, b], max_len=256)
    assert len(packed) == 1 and packed[0].position_ids.count(0) == 2

    def loss_of_b(row: Row) -> float:
        # Keep only B's labels, so the number measures what B's tokens see.
        start = len(row.input_ids) - len(b.input_ids) if row.input_ids[-1] == b.input_ids[-1] else 0
        labels = [IGNORE] * len(row.labels)
        labels[start + 1 : start + len(b.input_ids)] = b.labels[1:]
        with torch.no_grad():
            s, n = token_loss_sum(model, collate([Row(row.input_ids, labels, row.position_ids)], 0), "cpu")
        return float(s) / n

    alone = loss_of_b(Row(b.input_ids, b.labels, list(range(len(b.input_ids)))))
    together = loss_of_b(packed[0])
    assert together == pytest.approx(alone, abs=1e-5)
    # The same row with continuing positions is one sequence: B then attends to A and its loss moves.
    leaky = Row(packed[0].input_ids, packed[0].labels, list(range(len(packed[0].input_ids))))
    assert abs(loss_of_b(leaky) - alone) > 1e-4


def test_qlora_4bit_trains_on_cpu(tmp_path, tiny_models):
    from localft.backends.torch.loop import Trainer

    spec, run = make_run(tmp_path, tiny_models("llama"), steps=3, quantize="4bit", n_valid=0)
    with EventSink(run.events_path) as sink:
        trainer = Trainer(spec, run, sink, lambda: False)
        trainer.setup()
        kinds = {type(m).__name__ for m in trainer.model.modules()}
        assert "Linear4bit" in kinds  # the frozen base really is NF4
        trainer.run()
    steps = [e for e in read_events(run.events_path) if isinstance(e, Step)]
    assert len(steps) == 3 and all(math.isfinite(s.loss) for s in steps)
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()


def test_stop_writes_checkpoint_and_adapter(tmp_path, tiny_models):
    spec, run = make_run(tmp_path, tiny_models("llama"), steps=50, save_every=100, eval_every=100)
    seen = []

    def stop() -> bool:
        seen.append(1)
        return len(seen) > 2  # two steps run, then stop

    events = train_run(spec, run, stop)
    assert max(e.step for e in events if isinstance(e, Step)) == 2
    assert any(isinstance(e, Log) and "stopped" in e.message for e in events)
    assert run.latest_checkpoint() == run.checkpoint_path(2)
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()


def test_nan_loss_fails_and_keeps_last_good_checkpoint(tmp_path, tiny_models):
    """A token whose embedding is NaN poisons the loss the first time a batch contains it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    poisoned = tmp_path / "poisoned"
    # mistral's output layer is untied, so only the input embedding of that token is NaN.
    model = AutoModelForCausalLM.from_pretrained(tiny_models("mistral"))
    tok = AutoTokenizer.from_pretrained(tiny_models("mistral"))
    bad_id = tok.convert_tokens_to_ids("Ġzebra")
    with torch.no_grad():
        model.get_input_embeddings().weight[bad_id] = float("nan")
    model.save_pretrained(poisoned)
    tok.save_pretrained(poisoned)
    spec, run = make_run(tmp_path, poisoned, steps=6, save_every=1, batch_size=1, packing=False, n_valid=0)
    rows = chat_rows(5)
    # The longest row: length grouping puts it last in the epoch, so four good steps come first.
    rows[0]["messages"][2]["content"] = "I saw a zebra. " + "It ran and ran across the plain. " * 6
    write_jsonl(run.split_path("train"), rows)

    with pytest.raises(RunError, match="loss became nan"):
        train_run(spec, run)
    steps = [e for e in read_events(run.events_path) if isinstance(e, Step)]
    assert [s.step for s in steps] == [1, 2, 3, 4] and all(math.isfinite(s.loss) for s in steps)
    assert run.latest_checkpoint() == run.checkpoint_path(4)  # nothing written for the failing step


def test_memory_estimate_refuses_a_run_that_cannot_fit(tmp_path, tiny_models):
    spec, run = make_run(tmp_path, tiny_models("llama"), batch_size=100_000, max_seq_len=4096)
    with pytest.raises(DoesNotFit, match=r"needs about .* try --batch-size"):
        train_run(spec, run)
    assert not run.checkpoints()


def test_fused_lora_matches_peft(tiny_models):
    """The fused layer computes peft's LoRA exactly: same loss and gradients for the same weights."""
    import torch

    from localft.backends.torch.data import collate, pack_examples
    from localft.backends.torch.modeling import build_lora_model, placement, token_loss_sum
    from localft.data.chat_tokens import tokenize_row

    spec = TrainSpec(model=str(tiny_models("qwen2")), device="cpu")
    models = [build_lora_model(Path(spec.model), spec, placement(spec), fused=f) for f in (False, True)]
    layer = models[1].get_base_model().model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "FusedLoraLinear"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.model)
    batch = collate(pack_examples([tokenize_row(tok, r, 128) for r in chat_rows(4)], 256), 0)
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


def test_early_stopping_keeps_the_best_adapter_and_resume_trains_no_further(tmp_path, tiny_models):
    # Validation text unlike the training text: as the model fits "I love ..." the validation
    # loss falls for a few steps (the chat format), then rises.
    spec, run = make_run(
        tmp_path, tiny_models("llama"), steps=40, eval_every=1, save_every=100,
        learning_rate=2e-2, warmup_steps=0, early_stopping_patience=2,
    )  # fmt: skip
    other = [{"messages": [{"role": "user", "content": "Describe the weather."},
                           {"role": "assistant", "content": f"Grey skies over {w}, wet streets, cold wind."}]}
             for w in ("Oslo", "Lima", "Perth", "Quebec")]  # fmt: skip
    write_jsonl(run.split_path("valid"), other)
    events = train_run(spec, run)

    evals = [e for e in events if isinstance(e, Eval)]
    best = min(evals, key=lambda e: e.val_loss)
    last_step = max(e.step for e in events if isinstance(e, Step))
    assert last_step < 40 and evals[-1].step == last_step
    assert [e.step for e in evals[-2:]] == [best.step + 1, best.step + 2]  # patience 2, then stop
    assert any(isinstance(e, Log) and "early-stopped" in e.message for e in events)
    # The exported adapter is the best one, not the last.
    weights = "adapter_model.safetensors"
    assert (run.adapter_dir / weights).read_bytes() == (run.best_adapter_dir / weights).read_bytes()
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert state["stopped_early"] and state["best_step"] == best.step

    resumed = train_run(spec, run)[len(events) :]  # `localft runs resume` on a stopped-early run
    assert not [e for e in resumed if isinstance(e, Step)]


def test_auto_batch_halves_the_micro_batch_on_out_of_memory(tmp_path, tiny_models):
    """Out of memory cannot be provoked on demand on a CPU, so the first decoder layer raises
    torch's own OutOfMemoryError for micro-batches above one row; everything else is real."""
    import torch

    from localft.backends.torch.loop import Trainer

    def train_with_small_memory(spec, run) -> list:
        events = []
        trainer = Trainer(spec, run, events.append, lambda: False)
        trainer.setup()

        def refuse_big_batches(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if hidden.shape[0] > 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        layer = trainer.model.get_base_model().model.layers[0]
        layer.register_forward_pre_hook(refuse_big_batches, with_kwargs=True)
        trainer.run()
        return events

    common = dict(steps=4, batch_size=4, grad_accum=1, eval_every=100, save_every=100, packing=False)
    spec, run = make_run(tmp_path / "a", tiny_models("llama"), auto_batch=True, **common)
    events = train_with_small_memory(spec, run)
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert warnings == [
        "out of memory: retrying with micro-batch 2 x 2 steps",
        "out of memory: retrying with micro-batch 1 x 4 steps",
    ]
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert (state["batch_size"], state["grad_accum"]) == (1, 4)
    # The same rows in the same order: the step losses equal a run that had the memory.
    reference_spec, reference = make_run(tmp_path / "b", tiny_models("llama"), **common)
    reference_events = train_run(reference_spec, reference)
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert losses == pytest.approx([e.loss for e in reference_events if isinstance(e, Step)], rel=1e-4)

    spec, run = make_run(tmp_path / "c", tiny_models("llama"), **common)  # without --auto-batch
    with pytest.raises(DoesNotFit, match=r"out of memory at step 1 .* --batch-size 2 --grad-accum 2"):
        train_with_small_memory(spec, run)
