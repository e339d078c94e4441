"""Evaluate a run: base vs tuned GGUF on the held-out test split, then write the report and plots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from localft.errors import DataError, ExportError
from localft.eval.fingerprint import feature_distances, fingerprint, style_distance
from localft.eval.json_shape import json_scores
from localft.eval.leak import leak_check, leak_summary
from localft.eval.plots import plot_fingerprints, plot_training_curves
from localft.eval.report import write_report
from localft.events import Emit, Stage
from localft.runs import RunDir

Task = Literal["style", "json"]
DEFAULT_QUANT = "Q4_K_M"


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split_prompt(row: dict) -> tuple[list[dict], str]:
    """The turns before the last assistant reply, and that reply."""
    msgs = row["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return msgs[:last], msgs[last]["content"]


def run_task(run: RunDir) -> Task:
    """The task a recipe recorded for the run; plain runs are style runs."""
    try:
        return json.loads((run.path / "recipe.json").read_text(encoding="utf-8")).get("task", "style")
    except (FileNotFoundError, ValueError):
        return "style"


def tuned_gguf_path(run: RunDir, quant: str | None = None) -> Path:
    """The run's exported GGUF of `quant` (default: Q4_K_M, else the first one written)."""
    found = sorted(run.gguf_dir.glob("*.gguf")) if run.gguf_dir.is_dir() else []
    if quant:
        found = [p for p in found if p.stem.upper().endswith(quant.upper())]
    preferred = [p for p in found if p.stem.upper().endswith(DEFAULT_QUANT)]
    if not (preferred or found):
        want = f" {quant}" if quant else ""
        raise ExportError(f"run {run.id} has no{want} GGUF yet; run `localft export {run.id}` first")
    return (preferred or found)[0]


def quant_of(gguf: Path) -> str:
    return gguf.stem.rsplit("-", 1)[-1].upper()


def tokenizer_for(run: RunDir, model: str):
    from transformers import AutoTokenizer

    from localft.models import resolve_model

    folder = run.merged_dir if (run.merged_dir / "tokenizer_config.json").is_file() else resolve_model(model)
    return AutoTokenizer.from_pretrained(folder)


def score_model(
    gguf: Path, tokenizer, rows: list[dict], prompts: list[list[dict]], max_tokens: int, seed: int,
    on_progress: Callable[[str], None] = lambda _: None,
) -> tuple[float, list[str]]:  # fmt: skip
    """Perplexity of the replies in `rows`, and one generation per prompt."""
    from localft.eval.gguf_model import GgufModel

    longest = max((len(tokenizer(split_prompt(r)[1])["input_ids"]) for r in rows), default=0)
    n_ctx = max(512, min(4096, 256 * (longest // 256 + 2)))
    with GgufModel(gguf, tokenizer, n_ctx=n_ctx, seed=seed) as model:
        on_progress("perplexity")
        ppl = model.perplexity(rows)
        gens = model.generate_all(
            prompts, max_tokens, seed, lambda i, n: i < n and on_progress(f"generation {i + 1}/{n}")
        )
    return ppl, gens


def evaluate_run(
    run: RunDir,
    *,
    base_gguf: Path | None = None,
    tuned_gguf: Path | None = None,
    task: Task | None = None,
    samples: int = 8,
    max_tokens: int = 120,
    max_rows: int = 64,
    emit: Emit | None = None,
) -> dict:
    """Base vs tuned on the test split; writes eval/report.{json,md} and PNGs; returns the report."""
    emit = emit or (lambda _e: None)
    spec = run.read_spec()
    task = task or run_task(run)
    rows = (read_rows(run.split_path("test")) or read_rows(run.split_path("valid")))[:max_rows]
    if not rows:
        raise DataError(f"run {run.id} has no test or validation examples to evaluate on")
    train_replies = [split_prompt(r)[1] for r in read_rows(run.split_path("train"))]
    tuned_gguf = Path(tuned_gguf) if tuned_gguf else tuned_gguf_path(run)
    quant = quant_of(tuned_gguf)
    if base_gguf is None:
        from localft.eval.base_gguf import base_gguf_path

        emit(Stage("eval", 0, 4, f"base model as {quant} GGUF"))
        base_gguf = base_gguf_path(spec.model, quant)
    tokenizer = tokenizer_for(run, spec.model)
    picked = rows[:samples]
    prompts = [split_prompt(r)[0] for r in picked]
    real = [split_prompt(r)[1] for r in picked]

    models = [("base", base_gguf), *_sft_model(spec, quant), ("tuned", tuned_gguf)]
    stages = len(models) + 2
    results = {}
    for i, (who, gguf) in enumerate(models):

        def progress(what: str, i=i, who=who) -> None:
            emit(Stage("eval", 1 + i, stages, f"{who}: {what}"))

        results[who] = score_model(gguf, tokenizer, rows, prompts, max_tokens, spec.seed, progress)
    emit(Stage("eval", stages - 1, stages, "report"))

    report: dict = {
        "run": run.id, "model": spec.model, "task": task, "quant": quant,
        "base_gguf": str(base_gguf), "tuned_gguf": str(tuned_gguf),
        "test_rows": len(rows), "generations": len(prompts), "max_tokens": max_tokens,
        "metrics": {"perplexity": {w: results[w][0] for w in results}},
        "samples": [
            {"prompt": msgs[-1]["content"], "real": r} | {w: results[w][1][j] for w in results}
            for j, (msgs, r) in enumerate(zip(prompts, real, strict=True))
        ],
        "plots": {},
    }  # fmt: skip
    if task == "json":
        scores = {w: json_scores(results[w][1], real) for w in results}
        for key in ("valid_json_rate", "key_match_rate", "field_accuracy"):
            report["metrics"][key] = {w: scores[w][key] for w in results}
    else:
        _add_style(report, results, [split_prompt(r)[1] for r in rows], train_replies)
    _add_plots(report, run)
    from localft.eval.blind import blind_summary

    report["blind"] = blind_summary(run)
    write_report(report, run.eval_dir)
    emit(Stage("eval", stages, stages, "done"))
    return report


def _sft_model(spec, quant: str) -> list[tuple[str, Path]]:
    """A preference round's starting point, as its own column: the run its adapter came from,
    through that run's GGUF of the same type (when exported)."""
    if not spec.start_adapter:
        return []
    source = RunDir(Path(spec.start_adapter).parent)
    try:
        return [("sft", tuned_gguf_path(source, quant))]
    except ExportError:
        return []


def _add_style(report: dict, results: dict, real_posts: list[str], train_posts: list[str]) -> None:
    fps = {"real": fingerprint(real_posts)} | {w: fingerprint(results[w][1]) for w in results}
    report["fingerprints"] = {k: fp.to_dict() for k, fp in fps.items()}
    report["feature_distances"] = {w: feature_distances(fps[w], fps["real"]) for w in results}
    report["metrics"]["style_distance"] = {w: style_distance(fps[w], fps["real"]) for w in results}
    report["leak"] = {w: leak_summary(leak_check(results[w][1], train_posts)) for w in results}
    report["metrics"]["leak_longest"] = {w: report["leak"][w]["longest"] for w in results}
    report["_fps"] = fps  # for the plot; dropped before writing


def _add_plots(report: dict, run: RunDir) -> None:
    run.eval_dir.mkdir(parents=True, exist_ok=True)
    curves = plot_training_curves(run.events_path, run.eval_dir / "training_curves.png")
    if curves:
        report["plots"]["training_curves"] = str(curves)
    fps = report.pop("_fps", None)
    if fps:
        report["plots"]["fingerprints"] = str(plot_fingerprints(fps, run.eval_dir / "fingerprints.png"))
