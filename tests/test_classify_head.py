"""The classification head (`--head`): LoRA plus AutoModelForSequenceClassification's head trained through
the one loop on the sample review set, kill -9 then resume on the uninterrupted curve, the merged HF
folder loads and predicts, export refuses a GGUF; MLX and `method=full` are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from localft.cli.main import main
from localft.config import TrainSpec
from localft.events import Eval, RunStarted, Step
from localft.run.folder import new_run
from tests.training import kill_9_after_checkpoint, train_run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code


def head_run(root: Path, model: Path, **overrides):
    """A run of the review set imported by the classify recipe, training a head on `model`."""
    from localft.recipes.classify import prepare_data

    fields = dict(model=str(model), backend="torch", device="cpu", head=True, steps=6, batch_size=4,
                  max_seq_len=64, learning_rate=2e-3, warmup_steps=1, eval_every=3, save_every=2, seed=0)  # fmt: skip
    spec = TrainSpec(**{**fields, **overrides})
    run = new_run(spec, root=root / "runs")
    prepare_data(EXAMPLES / "reviews.csv", run, lambda _e: None)
    return spec, run


@pytest.mark.slow
def test_head_run_survives_kill_9_on_the_same_curve(tmp_path, tiny_models):
    from safetensors.numpy import load_file

    model = tiny_models("llama")
    spec, reference = head_run(tmp_path / "a", model)
    ref_events = train_run(spec, reference)
    expected = {e.step: e.loss for e in ref_events if isinstance(e, Step)}
    expected_val = {e.step: e.val_loss for e in ref_events if isinstance(e, Eval)}
    assert sorted(expected) == list(range(1, 7)) and set(expected_val) == {3, 6}
    assert json.loads((reference.adapter_dir / "head.json").read_text())["labels"] == [
        "negative", "neutral", "positive"
    ]  # fmt: skip

    spec, run = head_run(tmp_path / "b", model)
    killed_at = kill_9_after_checkpoint(run, step=2)
    assert killed_at == run.checkpoint_path(2)
    events = train_run(spec, run)
    assert [e for e in events if isinstance(e, RunStarted)][-1].resumed_from == 2
    got = {e.step: e.loss for e in events if isinstance(e, Step)}
    assert sorted(got) == list(range(1, 7))
    for step in got:
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    got_val = {e.step: e.val_loss for e in events if isinstance(e, Eval)}
    assert got_val[6] == pytest.approx(expected_val[6], rel=1e-5)
    a = load_file(reference.adapter_dir / "adapter_model.safetensors")
    b = load_file(run.adapter_dir / "adapter_model.safetensors")
    assert any("score" in k for k in a)  # the head's weights train and are saved, not only adapters
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


@pytest.mark.slow
def test_head_recipe_beats_chance_and_its_folder_predicts(capsys):
    """The recipe with --head on the embedded model: the head beats the few-shot base's chance level on
    the test split; the merged folder loads with AutoModelForSequenceClassification; no GGUF."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from localft.recipes.commands import run_recipe_cli

    settings = {
        "head": True,
        "steps": 10,
        "batch_size": 8,
        "max_seq_len": 64,
        "eval_every": 5,
        "save_every": 5,
    }
    result = run_recipe_cli(
        "classify",
        EXAMPLES / "reviews.csv",
        model="embedded",
        overrides=settings,
        eval_options={"samples": 12},
    )
    report, run = result.report, result.run
    assert result.gguf is None and not list(run.path.rglob("*.gguf"))
    metrics = report["metrics"]
    # Measured: 10 steps of 8 texts reach accuracy 1.00 on these 12 test texts (3 labels: chance 0.33;
    # the few-shot base 0.67); held-out accuracy was 0.67 at step 5.
    assert report["test_rows"] == 12
    assert metrics["accuracy"]["tuned"] >= 0.75 and metrics["macro_f1"]["tuned"] >= 0.7
    assert metrics["prompt_tokens"]["tuned"] < metrics["prompt_tokens"]["base"]  # no shots in the prompt
    assert "confusion.png" in report["plots"]["confusion"] and Path(report["plots"]["confusion"]).is_file()
    md = (run.eval_dir / "report.md").read_text()
    assert "a GGUF cannot carry a head" in md and "Head (HF)" in md
    out = capsys.readouterr().out
    assert "a GGUF cannot carry a classification head" in out

    folder = Path(report["merged"])
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert [model.config.id2label[i] for i in range(3)] == ["negative", "neutral", "positive"]
    texts = ["Broke after two days and support never answered. A waste of money, I want a refund.",
             "Wonderful! Works perfectly, beautifully made, I love it and would buy it again."]  # fmt: skip
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        said = [model.config.id2label[i] for i in model(**enc).logits.argmax(-1).tolist()]
    assert said == ["negative", "positive"]

    assert exit_code(["export", run.id]) == 2
    err = capsys.readouterr().err
    assert "a GGUF cannot carry" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_head_on_mlx_and_method_full_are_refused_in_one_line(capsys):
    from localft.backends import pick_backend
    from localft.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="a classification head trains on the torch backend"):
        pick_backend(TrainSpec(head=True, backend="mlx"), {})
    assert exit_code(["train", "x.jsonl", "--method", "full"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--set weights=full" in err and len(err.splitlines()) == 1
    assert (
        exit_code(
            ["recipe", "run", "classify", "--from", str(EXAMPLES / "reviews.csv"), "--set", "method=full"]
        )
        == 2
    )
    assert "--set weights=full" in capsys.readouterr().err
    assert exit_code(["train", str(EXAMPLES / "reviews.csv"), "--set", "head=true"]) == 2
    assert "localft recipe run classify --from FILE --head" in capsys.readouterr().err
