"""Preference rounds through the one training loop, on torch and MLX (tiny random models): the
reference is the starting adapter (DPO's first loss is log 2), training moves the held-out reward
accuracy, a stopped round resumes on the uninterrupted loss curve, and every method trains."""

from __future__ import annotations

import json
import math

import pytest

from localft.chat.feedback import FeedbackLog, feedback_path
from localft.events import Eval, Log, RunStarted, Step
from localft.train.preference_round import prepare_round
from tests.training import chat_rows, make_run, train_run

BACKENDS = ["torch", pytest.param("mlx", marks=pytest.mark.mlx)]
ROUND = dict(steps=6, batch_size=2, learning_rate=5e-3, warmup_steps=0, eval_every=3, save_every=3,
             early_stopping_patience=None, schedule="constant")  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def source(request, tmp_path_factory, tiny_models):
    """A trained SFT run (trained once per backend) with chat feedback: each request's real reply
    chosen over a generic one."""
    if request.param == "mlx":
        pytest.importorskip("mlx_lm")
    tmp = tmp_path_factory.mktemp(f"sft-{request.param}")
    spec, run = make_run(tmp, tiny_models("llama"), backend=request.param, steps=2, n_valid=0)
    train_run(spec, run)
    log = FeedbackLog(feedback_path(run.path))
    for row in chat_rows(12, seed=1):
        prompt, reply = row["messages"][:2], row["messages"][2]["content"]
        log.pick(prompt, reply, f"As an AI, I find {prompt[1]['content'][10:-1]} interesting.")
    return run


def losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, Step)}


def accuracies(events) -> list[float]:
    return [
        float(e.message.rsplit(" ", 1)[1])
        for e in events
        if isinstance(e, Log) and "reward accuracy" in e.message
    ]


@pytest.mark.slow
def test_a_dpo_round_starts_at_log_2_learns_and_resumes_exactly(source):
    whole = prepare_round(source, "dpo", overrides=ROUND)
    events = train_run(whole.read_spec(), whole)
    curve = losses(events)
    # Policy = reference (the starting adapter) at the first step: -log sigmoid(0) = log 2.
    assert curve[1] == pytest.approx(math.log(2), abs=1e-4)
    assert curve[6] < curve[1] - 0.05
    assert [e.step for e in events if isinstance(e, Eval)] == [3, 6]
    assert accuracies(events)[-1] > 0.5
    assert (whole.data_dir / "reference-logps.json").is_file()

    stopped = prepare_round(source, "dpo", overrides=ROUND)
    calls = iter(range(100))
    train_run(stopped.read_spec(), stopped, stop=lambda: next(calls) >= 3)  # stops after step 3
    resumed = train_run(stopped.read_spec(), stopped)
    again = losses(resumed[max(i for i, e in enumerate(resumed) if isinstance(e, RunStarted)) :])
    assert sorted(again) == [4, 5, 6]
    for step in again:
        assert again[step] == pytest.approx(curve[step], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("method", ["ipo", "orpo", "simpo", "kto"])
def test_every_method_trains(source, method):
    if source.read_spec().backend == "mlx" and method in ("ipo", "orpo"):
        pytest.skip("MLX: DPO, SimPO and KTO cover its glue (the same log-probs and loss math)")
    run = prepare_round(source, method, overrides={**ROUND, "steps": 2, "eval_every": 2})
    events = train_run(run.read_spec(), run)
    curve = losses(events)
    assert len(curve) == 2 and all(math.isfinite(v) for v in curve.values())
    assert any(run.adapter_dir.glob("adapter*.safetensors"))
    if method == "kto":  # the policy starts as the reference: every example's loss is 1 - sigmoid(0)
        assert curve[1] == pytest.approx(0.5, abs=1e-4)
    spec = json.loads((run.path / "spec.json").read_text())
    assert spec["method"] == method and spec["start_adapter"]


@pytest.mark.slow
def test_a_round_on_a_4bit_base(source):
    """DPO on a 4-bit base: bitsandbytes NF4 on torch (it runs on the CPU, slowly), MLX's own 4-bit
    quantization on MLX; two steps, starting at log 2 as on full precision."""
    if source.read_spec().backend == "torch":
        pytest.importorskip("bitsandbytes")
    run = prepare_round(source, "dpo", overrides={**ROUND, "steps": 2, "eval_every": 2, "quantize": "4bit"})
    curve = losses(train_run(run.read_spec(), run))
    assert curve[1] == pytest.approx(math.log(2), abs=1e-3) and math.isfinite(curve[2])


def test_the_reference_is_the_starting_adapter_not_the_base(source):
    """The stored reference log-probs are the source run's adapter's (peft loads it here on its
    own), not the base model's: the round really continues from SFT."""
    if source.read_spec().backend != "torch":
        pytest.skip("read back through peft")
    import numpy as np
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from localft.backends.torch.preference import sequence_logps
    from localft.data.pairs import pairs_path
    from localft.plan.catalog import load_tokenizer
    from localft.train.preference_data import load_examples
    from localft.train.preference_loop import _row
    from localft.train.rows import collate

    run = prepare_round(source, "dpo", overrides={**ROUND, "steps": 1, "eval_every": 1})
    train_run(run.read_spec(), run)
    stored = np.asarray(json.loads((run.data_dir / "reference-logps.json").read_text())["train"])
    model_dir = source.read_spec().model
    examples = load_examples(load_tokenizer(model_dir, chat=True), pairs_path(run, "train"), "dpo", 128)
    batch = collate([_row(examples[0].chosen)], 0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        base_logp = float(sequence_logps(base, batch, "cpu")[0][0])
        tuned = PeftModel.from_pretrained(base, source.adapter_dir).eval()
        sft_logp = float(sequence_logps(tuned, batch, "cpu")[0][0])
    assert abs(sft_logp - base_logp) > 1e-3  # the SFT adapter moved this reply's log-prob
    assert stored[0, 0] == pytest.approx(sft_logp, abs=1e-3)
