"""The contract every backend keeps with the one training loop (localft.train), run against torch and
MLX (mlx[cpu]) alike on tiny random models: the same rows in the same order, the same step-1 loss,
resume after kill -9 on the uninterrupted loss curve, the non-finite-loss stop, stop requests,
out-of-memory halving, early stopping, a finished run that trains no further, and the memory
refusal."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from localft.errors import DoesNotFit, RunError
from localft.events import Checkpoint, Eval, Log, RunStarted, Step, read_events
from tests.training import Hooked, chat_rows, kill_9_after_checkpoint, make_run, train_run, write_jsonl

BACKENDS = ["torch", pytest.param("mlx", marks=pytest.mark.mlx)]
# Files of the exported adapter, per backend.
ADAPTER = {"torch": "adapter_model.safetensors", "mlx": "adapters.safetensors"}
SMALL = dict(max_seq_len=96, batch_size=2)


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "mlx":
        pytest.importorskip("mlx_lm")
    return request.param


def losses(events) -> dict[int, float]:
    """step -> loss; a step logged twice (before a kill, and again after the resume) keeps the last."""
    return {e.step: e.loss for e in events if isinstance(e, Step)}


def since_last_start(events) -> list:
    return events[max(i for i, e in enumerate(events) if isinstance(e, RunStarted)) :]


def reference_first_step_loss(model_dir, rows) -> float:
    """The base model's mean token loss on the first step's rows, by plain transformers (full logits,
    one example at a time): at step 1 the adapters add nothing yet (LoRA B starts at zero)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    for row in rows:
        starts = [i for i, p in enumerate(row.position_ids) if p == 0] + [len(row)]
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            ids = torch.tensor([row.input_ids[a:b]])
            labels = torch.tensor([row.labels[a:b]])
            with torch.no_grad():
                logits = model(ids).logits[0, :-1]
            target = labels[0, 1:]
            keep = target != -100
            total += float(torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum"))
            count += int(keep.sum())
    return total / count


def test_trains_on_the_seeded_rows_and_a_finished_run_trains_no_further(tmp_path, tiny_models, backend):
    from transformers import AutoTokenizer

    from localft.train.rows import RowStream, tokenize_split

    model = tiny_models("llama")
    spec, run = make_run(tmp_path, model, backend=backend, steps=4, eval_every=2, save_every=2, **SMALL)
    fed = []
    hooked = Hooked(backend, lambda s: _record_batches(s, fed))
    events = train_run(spec, run, backend=hooked)

    # The rows the backend was fed are the core's seeded order, whatever the framework.
    tok = AutoTokenizer.from_pretrained(model)
    examples = tokenize_split(tok, run.split_path("train"), spec.max_seq_len, spec.train_on)
    expected = RowStream(examples, spec.max_seq_len, True, spec.seed).take(4 * spec.batch_size)
    assert len(fed) == 4
    for batch, start in zip(fed, range(0, 8, 2), strict=True):
        for b, row in enumerate(expected[start : start + 2]):
            assert batch.input_ids[b, : len(row)].tolist() == list(row.input_ids)
            assert batch.labels[b, : len(row)].tolist() == list(row.labels)
    assert any(r.position_ids.count(0) > 1 for r in expected)  # packed rows really are packed

    steps = [e for e in events if isinstance(e, Step)]
    assert [s.step for s in steps] == [1, 2, 3, 4]
    assert all(math.isfinite(s.loss) and s.tok_per_s > 0 and s.peak_mem > 0 for s in steps)
    assert steps[0].loss == pytest.approx(reference_first_step_loss(model, expected[:2]), rel=1e-5)
    assert steps[-1].loss < steps[0].loss
    assert [e.step for e in events if isinstance(e, Eval)] == [2, 4]
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [2, 4]
    state = json.loads((run.checkpoint_path(4) / "state.json").read_text())
    assert (state["step"], state["position"], state["micro_batch"]) == (4, 8, 2)
    assert (run.adapter_dir / ADAPTER[backend]).is_file()

    again = since_last_start(train_run(spec, run))
    assert again[0].resumed_from == 4
    assert not [e for e in again if isinstance(e, (Step, Checkpoint))]


def _record_batches(session, fed: list) -> None:
    accumulate = session.accumulate

    def recording(batch, scale):
        fed.append(batch)
        return accumulate(batch, scale)

    session.accumulate = recording


@pytest.mark.slow
def test_kill_9_then_resume_reproduces_the_uninterrupted_loss_curve(tmp_path, tiny_models, backend):
    settings = dict(backend=backend, steps=12, save_every=4, eval_every=100, n_valid=0, lora={"dropout": 0.1},
                    batch_size=1, grad_accum=2, max_seq_len=96)  # fmt: skip
    spec, reference = make_run(tmp_path / "a", tiny_models("llama"), **settings)
    expected = losses(train_run(spec, reference))

    spec, run = make_run(tmp_path / "b", tiny_models("llama"), **settings)
    killed_at = kill_9_after_checkpoint(run, step=4)
    assert killed_at == run.checkpoint_path(4)

    events = train_run(spec, run)  # appends to the same events.jsonl, from the newest checkpoint
    assert since_last_start(events)[0].resumed_from == int(killed_at.name.split("-")[1])
    got = losses(events)
    assert sorted(got) == list(range(1, 13))
    for step in range(1, 13):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    weights = ADAPTER[backend]
    assert (run.adapter_dir / weights).read_bytes() != b""
    if backend == "torch":  # the same adapter, to float tolerance
        from safetensors.numpy import load_file
    else:
        import mlx.core as mx

        load_file = lambda p: {k: np.array(v) for k, v in mx.load(str(p)).items()}  # noqa: E731
    a, b = load_file(reference.adapter_dir / weights), load_file(run.adapter_dir / weights)
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


def poisoned_model(tmp_path, tiny_models):
    """The tiny mistral (untied output layer) with the input embedding of one token set to NaN."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "poisoned"
    if not folder.exists():
        model = AutoModelForCausalLM.from_pretrained(tiny_models("mistral"))
        tok = AutoTokenizer.from_pretrained(tiny_models("mistral"))
        with torch.no_grad():
            model.get_input_embeddings().weight[tok.convert_tokens_to_ids("Ġzebra")] = float("nan")
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


def test_a_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path, tiny_models, backend):
    spec, run = make_run(tmp_path, poisoned_model(tmp_path, tiny_models), backend=backend, steps=6,
                         save_every=1, batch_size=1, packing=False, n_valid=0)  # fmt: skip
    rows = chat_rows(5)
    # The longest row: length grouping puts it last in the epoch, so four good steps come first.
    rows[0]["messages"][2]["content"] = "I saw a zebra. " + "It ran and ran across the plain. " * 4
    write_jsonl(run.split_path("train"), rows)

    with pytest.raises(RunError, match="loss became nan at step 5; the last good checkpoint is step-000004"):
        train_run(spec, run)
    steps = [e for e in read_events(run.events_path) if isinstance(e, Step)]
    assert [s.step for s in steps] == [1, 2, 3, 4] and all(math.isfinite(s.loss) for s in steps)
    assert run.latest_checkpoint() == run.checkpoint_path(4)  # nothing written for the failing step


def test_a_stop_request_lands_before_the_next_step(tmp_path, tiny_models, backend):
    spec, run = make_run(tmp_path, tiny_models("llama"), backend=backend, steps=50, save_every=100,
                         eval_every=100, n_valid=0, **SMALL)  # fmt: skip
    polls = iter(range(10**6))
    events = train_run(spec, run, stop=lambda: next(polls) >= 2)  # polled before each step

    assert [e.step for e in events if isinstance(e, Step)] == [1, 2]
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [2]
    assert "training stopped at step 2; writing a checkpoint" in [
        e.message for e in events if isinstance(e, Log)
    ]
    assert run.latest_checkpoint() == run.checkpoint_path(2)
    assert (run.adapter_dir / ADAPTER[backend]).is_file()


def refuse_batches_of_more_than_one_row(backend: str):
    """Out of memory cannot be provoked on demand on a CPU, so the first decoder layer raises the
    framework's own out-of-memory error (torch.OutOfMemoryError; MLX's RuntimeError from its
    allocator, with Metal's wording) for micro-batches of more than one row."""

    def install(session) -> None:
        if backend == "torch":
            import torch

            def hook(module, args, kwargs):
                hidden = args[0] if args else kwargs["hidden_states"]
                if hidden.shape[0] > 1:
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

            session.model.get_base_model().model.layers[0].register_forward_pre_hook(hook, with_kwargs=True)
            return
        layer = session.model.layers[0]
        base = type(layer)

        def call(self, x, *args, **kwargs):
            if x.shape[0] > 1:
                raise RuntimeError("[metal::malloc] Attempting to allocate 2147483648 bytes which is greater "
                                   "than the maximum allowed buffer size of 1073741824 bytes.")  # fmt: skip
            return base.__call__(self, x, *args, **kwargs)

        layer.__class__ = type(base.__name__, (base,), {"__call__": call})

    return Hooked(backend, install)


def test_out_of_memory_halving_gives_the_same_step_losses(tmp_path, tiny_models, backend):
    common = dict(backend=backend, steps=3, batch_size=4, eval_every=100, save_every=100, packing=False,
                  n_valid=0, max_seq_len=96)  # fmt: skip
    spec, run = make_run(tmp_path / "a", tiny_models("llama"), auto_batch=True, **common)
    events = train_run(spec, run, backend=refuse_batches_of_more_than_one_row(backend))
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    assert warnings == [
        "out of memory: retrying with micro-batch 2 x 2 steps",
        "out of memory: retrying with micro-batch 1 x 4 steps",
    ]
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert state["micro_batch"] == 1
    # The same rows in the same order: the step losses equal a run that had the memory.
    reference_spec, reference = make_run(tmp_path / "b", tiny_models("llama"), **common)
    want = [e.loss for e in train_run(reference_spec, reference) if isinstance(e, Step)]
    assert [e.loss for e in events if isinstance(e, Step)] == pytest.approx(want, rel=1e-5)

    spec, run = make_run(tmp_path / "c", tiny_models("llama"), **common)  # without --auto-batch
    with pytest.raises(DoesNotFit, match=r"out of memory at step 1 .* --batch-size 2 --grad-accum 2"):
        train_run(spec, run, backend=refuse_batches_of_more_than_one_row(backend))


def test_early_stopping_keeps_the_best_adapter_and_trains_no_further(tmp_path, tiny_models, backend):
    # Validation text unlike the training text: as the model fits "I love ..." the validation
    # loss falls for a few steps (the chat format), then rises.
    spec, run = make_run(tmp_path, tiny_models("llama"), backend=backend, steps=30, eval_every=1,
                         save_every=100, learning_rate=2e-2, warmup_steps=0, early_stopping_patience=2,
                         **SMALL)  # fmt: skip
    other = [{"messages": [{"role": "user", "content": "Describe the weather."},
                           {"role": "assistant", "content": f"Grey skies over {w}, wet streets, cold wind."}]}
             for w in ("Oslo", "Lima", "Perth", "Quebec")]  # fmt: skip
    write_jsonl(run.split_path("valid"), other)
    events = train_run(spec, run)

    evals = [e for e in events if isinstance(e, Eval)]
    best = min(evals, key=lambda e: e.val_loss)
    last_step = max(e.step for e in events if isinstance(e, Step))
    assert last_step < 30 and evals[-1].step == last_step
    assert [e.step for e in evals[-2:]] == [best.step + 1, best.step + 2]  # patience 2, then stop
    assert any(isinstance(e, Log) and "early-stopped" in e.message for e in events)
    weights = ADAPTER[backend]  # the exported adapter is the best one, not the last
    assert (run.adapter_dir / weights).read_bytes() == (run.best_adapter_dir / weights).read_bytes()
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert state["stopped_early"] and state["best_step"] == best.step

    resumed = since_last_start(train_run(spec, run))  # `localft runs resume` on a stopped-early run
    assert not [e for e in resumed if isinstance(e, (Step, Checkpoint))]


def test_a_run_that_cannot_fit_is_refused_with_numbers(tmp_path, tiny_models, backend):
    spec, run = make_run(
        tmp_path, tiny_models("llama"), backend=backend, batch_size=100_000, max_seq_len=4096
    )
    with pytest.raises(DoesNotFit, match=r"needs about .* but only .* free .* try --batch-size"):
        train_run(spec, run)
    assert not run.checkpoints()
