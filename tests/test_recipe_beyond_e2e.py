"""The classify and domain-adapt recipes end to end on the embedded model and the bundled samples (a
few steps: these check the pipeline and the report, not how well a model learns), and `localft eval
--judge` on the domain-adapt run."""

import json
from pathlib import Path

import pytest

from localft.recipes.commands import run_recipe_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = {"steps": 2, "max_seq_len": 128, "batch_size": 2, "eval_every": 2, "save_every": 2}


@pytest.mark.slow
@pytest.mark.llama
def test_classify_recipe_reports_tuned_against_few_shot_base():
    pytest.importorskip("llama_cpp")
    result = run_recipe_cli(
        "classify", EXAMPLES / "emails.jsonl", model="embedded", overrides=TINY, eval_options={"samples": 6}
    )
    report, run = result.report, result.run
    assert result.gguf.is_file() and result.gguf.name.endswith("-Q8_0.gguf")
    metrics = report["metrics"]
    for key in ("accuracy", "macro_f1", "prompt_tokens"):
        assert set(metrics[key]) == {"base", "tuned"}
    # The few-shot prompt carries 2 examples per label; the tuned model is asked the text alone.
    assert metrics["prompt_tokens"]["base"] > metrics["prompt_tokens"]["tuned"] + 40
    info = report["classification"]
    assert info["labels"] == ["legitimate", "phishing"] and info["shot_examples"] == 4
    for who in ("base", "tuned"):
        assert sum(map(sum, info[who]["confusion"])) == report["test_rows"] == 6
        assert all(s[who] in info["labels"] for s in report["samples"])  # the grammar held
    assert report["verdict"].split(":")[0] in (
        "The fine-tuned model wins", "A tie", "The base model prompted with 2 examples per class wins",
    )  # fmt: skip
    md = (run.eval_dir / "report.md").read_text()
    assert (
        report["verdict"] in md and "Confusion matrix (fine-tuned)" in md and "Prompt tokens per query" in md
    )
    assert (run.eval_dir / "confusion.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.llama
def test_domain_adapt_recipe_then_eval_with_a_judge(capsys):
    pytest.importorskip("llama_cpp")
    from localft.cli.main import main
    from localft.plan.catalog import embedded_gguf_path

    result = run_recipe_cli(
        "domain-adapt", EXAMPLES / "workshop-notes", model="embedded", overrides=TINY,
        eval_options={"samples": 1, "max_tokens": 8},
    )  # fmt: skip
    report = result.report
    ppl = report["metrics"]["perplexity"]
    # Two steps at a high rate on the notes already make the held-out passages more likely.
    assert ppl["tuned"] < ppl["base"]
    assert {"rouge_l", "bleu"} <= set(report["metrics"])
    assert len(report["samples"]) == 1 and all(s["prompt"] and s["real"] for s in report["samples"])

    code = main(
        ["eval", result.run.id, "--samples", "2", "--max-tokens", "12", "--judge", str(embedded_gguf_path())]
    )
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "ROUGE-L" in out and "Judge's preference" in out
    judged = json.loads((result.run.eval_dir / "report.json").read_text())["judge"]
    assert judged["pairs"] == 2 and sum(judged["wins"].values()) == 2
    assert judged["score"]["base"] + judged["score"]["tuned"] == pytest.approx(1.0)
