"""The plan of a run: decided once by `plan()`, from each backend's own check(), sized to the data
and to the time the person has, stored in the run and read back the same."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from localft.config import TrainSpec
from localft.errors import RunError
from localft.events import EventSink, RunStarted, Step
from localft.plan.hardware import this_machine
from localft.plan.planner import (
    PLAN_FILE,
    Plan,
    TrainingData,
    describe,
    plan,
    plan_run,
    read_plan,
    training_data,
    write_plan,
)
from localft.recipes import get_recipe
from localft.recipes.pipeline import recipe_spec
from localft.run.folder import new_run
from localft.run.runner import preview_data

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "linkedin-export.zip"


def test_the_plan_on_this_cpu_machine_is_torch_fp32_and_fits(tiny_models):
    p = plan(TrainSpec(model=str(tiny_models("llama")), batch_size=2, grad_accum=3, steps=7))
    assert (p.backend, p.device, p.precision) == ("torch", "cpu", "fp32")
    assert (p.micro_batch, p.grad_accum, p.steps, p.global_batch) == (2, 3, 7, 6)
    assert p.fits and 0 < p.memory_needed < p.memory_available and p.memory_where == "RAM"


def test_a_plan_round_trips_through_the_run_folder(tmp_path):
    p = Plan("mlx", "cpu", "fp32", "4bit", 4, 2, 100, 512, epochs=2.5, notes=["because"])
    assert read_plan(tmp_path) is None
    write_plan(tmp_path, p)
    assert read_plan(tmp_path) == p
    (tmp_path / PLAN_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(RunError, match="plan.json is damaged"):
        read_plan(tmp_path)


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """A real executable named nvidia-smi that lists one 24 GB GPU, first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA GeForce RTX 4090, 24564, 550.54'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for nvidia-smi")
def test_a_cpu_only_torch_beside_an_nvidia_gpu_plans_for_the_cpu(fake_nvidia_smi):
    import torch

    assert not torch.cuda.is_available()  # this CPU build of torch cannot use the GPU nvidia-smi lists
    machine = this_machine()
    assert machine.gpus_listed == 1 and machine.backends["torch"].device == "cpu"
    p = plan(TrainSpec(model="embedded", steps=10), machine)
    assert (p.device, p.precision, p.memory_where) == ("cpu", "fp32", "RAM")
    assert any("this torch has no CUDA" in n for n in p.notes)
    # The recipe plans the CPU defaults and the embedded model, not a 24 GB GPU's ladder.
    spec = recipe_spec(get_recipe("style-clone"), None, machine=machine)
    assert (
        spec.model == "embedded" and spec.max_seq_len == get_recipe("style-clone").cpu_defaults["max_seq_len"]
    )


def small_export(path: Path, posts: int) -> Path:
    """The sample LinkedIn export cut to its first rows, enough for `posts` kept posts."""
    with zipfile.ZipFile(SAMPLE) as z:
        rows = list(csv.reader(io.StringIO(z.read("Shares.csv").decode("utf-8-sig"))))
        profile = z.read("Profile.csv")
    out = io.StringIO()
    csv.writer(out).writerows(rows[: posts + 1])
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Shares.csv", out.getvalue())
        z.writestr("Profile.csv", profile)
    return path


def test_the_style_clone_plan_follows_the_size_of_the_export(tmp_path):
    """Epochs, not a fixed step count: a small export gets fewer steps than the 150-post sample,
    validation twice an epoch, and early stopping on."""
    recipe = get_recipe("style-clone")
    spec = recipe_spec(recipe, "embedded")
    small = preview_data(spec, small_export(tmp_path / "small.zip", 30))
    sample = preview_data(spec, SAMPLE)
    assert small.report.kept < 30 and sample.report.kept == 150
    p_small, p_sample = plan(spec, data=small.data), plan(spec, data=sample.data)
    assert p_small.steps < p_sample.steps / 3
    for p, examples in ((p_small, small.report.splits["train"]), (p_sample, 120)):
        assert p.train_examples == examples and p.epochs == pytest.approx(spec.epochs, abs=0.05)
        per_epoch = -(-p.train_rows // p.global_batch)
        assert p.early_stopping_patience and p.eval_every <= max(1, per_epoch // 2)
    assert p_small.eval_every < p_sample.eval_every  # a small run still validates twice an epoch


def test_rows_are_counted_as_the_torch_backend_packs_them(tiny_models):
    """The epochs a plan shows are real: the same rows the backend packs."""
    from localft.plan.catalog import load_tokenizer
    from localft.train.rows import pack_examples, tokenize_split

    run = new_run(TrainSpec(model=str(tiny_models("llama"))))
    run.data_dir.mkdir()
    words = [
        "lighthouse",
        "keepers",
        "record",
        "the",
        "weather",
        "every",
        "single",
        "hour",
        "of",
        "the",
        "night",
    ]
    rows = [
        {"messages": [{"role": "user", "content": f"Post {i}"},
                      {"role": "assistant", "content": " ".join(words[: 3 + i % 9] * (1 + i % 4))}]}
        for i in range(40)
    ]  # fmt: skip
    run.split_path("train").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = run.read_spec()
    data = training_data(run.split_path("train"), spec)
    examples = tokenize_split(
        load_tokenizer(Path(spec.model), chat=True), run.split_path("train"), 64, "completions"
    )
    assert data.examples == len(examples)
    assert data.rows(64) == len(pack_examples(examples, 64)) and data.rows(64, packing=False) == 40


def record_run(model: str, tokens_per_s: float, steps: int = 5, method: str = "sft") -> str:
    """An earlier run of `model` on torch/cpu whose steps trained `tokens_per_s` over wall time."""
    run = new_run(TrainSpec(model=model, steps=steps, method=method))
    with EventSink(run.events_path) as sink:
        sink(RunStarted(run.id, "torch", model, "cpu", steps, time=1000.0))
        for i in range(1, steps + 1):
            sink(Step(i, steps, 2.0, 1e-4, int(i * 10 * tokens_per_s), tokens_per_s, 1, time=1000.0 + 10 * i))
    return run.id


def test_a_time_budget_bounds_the_steps_at_the_pace_measured_here(tiny_models):
    model = str(tiny_models("llama"))
    data = TrainingData(tuple([100] * 400))  # 400 rows of 100 tokens: 100 steps of 4 rows an epoch
    spec = TrainSpec(model=model, batch_size=4, max_seq_len=128, epochs=2, time_budget_min=5)
    unknown = plan(spec, data=data)
    assert unknown.steps == 200 and unknown.pace is None  # the loop's first steps fix the count
    assert (
        "the first 4 steps measure it, then the 5 min budget fixes the step count (at most 200)"
        in "\n".join(describe(unknown))
    )

    earlier = record_run(model, tokens_per_s=80.0)
    p = plan(spec, data=data)
    # 5 min at 80 tokens/s = 24,000 tokens; a step trains 4 rows of 100 tokens.
    assert (p.pace, p.pace_from, p.tokens_per_step) == (pytest.approx(80.0), earlier, 400)
    assert p.steps == 60 and p.epochs == 0.6 and p.seconds == pytest.approx(300)
    assert any("caps training at 60 steps" in n and earlier in n for n in p.notes)
    assert plan(spec.model_copy(update={"time_budget_min": 60}), data=data).steps == 200  # epochs first

    # Another model on the same backend and device: that pace, scaled by the parameter counts.
    from localft.plan.planner import _parameters

    other = str(tiny_models("qwen2"))
    scaled = plan(spec.model_copy(update={"model": other}), data=data)
    assert scaled.pace == pytest.approx(80.0 * _parameters(model) / _parameters(other))
    assert earlier in scaled.pace_from and "scaled" in scaled.pace_from and scaled.steps < 200


def test_a_grpo_rounds_time_comes_from_an_earlier_rounds_pace_which_includes_drafting(tiny_models):
    """An SFT run's pace has no drafting in it: a round is not promised its time from one; an
    earlier round's pace (its tokens: G prompts and drafts a request, over wall time) sizes it."""
    model = str(tiny_models("llama"))
    data = TrainingData(tuple([100] * 40))
    spec = TrainSpec(model=model, method="grpo", group_size=4, batch_size=2, max_seq_len=128, steps=10)
    record_run(model, tokens_per_s=80.0)
    sft_only = plan(spec, data=data)
    assert sft_only.pace is None and sft_only.tokens_per_step == 2 * 4 * 100
    assert f"time: known after a first grpo round (its pace includes drafting) of {model}" in "\n".join(
        describe(sft_only)
    )
    earlier = record_run(model, tokens_per_s=20.0, method="grpo")
    p = plan(spec, data=data)
    assert (p.pace, p.pace_from) == (pytest.approx(20.0), earlier)
    assert p.seconds == pytest.approx(10 * 800 / 20.0)
    assert (
        plan(spec.model_copy(update={"method": "sft"}), data=data).pace_from != earlier
    )  # and SFT the reverse


def test_a_planned_run_records_the_same_steps_in_plan_and_spec(tiny_models):
    run = new_run(TrainSpec(model=str(tiny_models("llama")), batch_size=2, max_seq_len=64, epochs=3))
    run.data_dir.mkdir()
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]}
    run.split_path("train").write_text((json.dumps(row) + "\n") * 10)
    p = plan_run(run)
    spec = run.read_spec()
    assert read_plan(run.path) == p and p.train_examples == 10
    assert (spec.steps, spec.batch_size, spec.backend, spec.device, spec.eval_every) == (
        p.steps, p.micro_batch, p.backend, p.device, p.eval_every
    )  # fmt: skip
