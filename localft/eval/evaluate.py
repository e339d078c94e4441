"""Evaluate a run: base vs tuned GGUF on the held-out test split, then write the report and plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from localft.errors import ConfigError, DataError, ExportError
from localft.eval.fingerprint import feature_distances, fingerprint, style_distance
from localft.eval.inputs import (
    Task,
    as_model,
    model_label,
    passage_prompt,
    quant_of_model,
    read_rows,
    reference_text,
    run_task,
    split_prompt,
    tokenizer_for,
    tuned_model,
)
from localft.eval.json_shape import json_scores
from localft.eval.leak import leak_check, leak_summary
from localft.eval.overlap import overlap_scores
from localft.eval.plots import plot_fingerprints, plot_training_curves
from localft.eval.report import write_report
from localft.events import Emit, Stage
from localft.run.folder import RunDir

ROUND_REWARD_DRAWS = 4  # one sampled reply's reward is noisier than a round's gain over 15 requests


def score_model(
    gguf: Path, tokenizer, rows: list[dict], prompts: list[list[dict]] | list[str], max_tokens: int, seed: int,
    on_progress: Callable[[str], None] = lambda _: None, draws: int = 1,
) -> tuple[float, list[list[str]]]:  # fmt: skip
    """Perplexity of the replies in `rows`, and `draws` generations per prompt (the first of each
    seeded as a single draw would be, so one more draw changes no other figure)."""
    from localft.eval.gguf_model import GgufModel

    longest = max((len(tokenizer(reference_text(r))["input_ids"]) for r in rows), default=0)
    n_ctx = max(512, min(4096, 256 * (longest // 256 + 2)))
    with GgufModel(gguf, tokenizer, n_ctx=n_ctx, seed=seed) as model:
        on_progress("perplexity")
        ppl = model.perplexity(rows)
        gens = model.generate_all(
            list(prompts) * draws,
            max_tokens,
            seed,
            lambda i, n: i < n and on_progress(f"generation {i + 1}/{n}"),
        )
    n = len(prompts)
    return ppl, [gens[i::n] for i in range(n)]


def evaluate_run(
    run: RunDir,
    *,
    base_gguf: Path | None = None,
    tuned_gguf=None,  # a GGUF path or a ChatModel (base + adapter); default: the run's
    task: Task | None = None,
    samples: int = 8,
    max_tokens: int = 120,
    reward_draws: int | None = None,
    max_rows: int = 64,
    judge: Path | None = None,
    emit: Emit | None = None,
) -> dict:
    """Base vs tuned on the test split; writes eval/report.{json,md} and PNGs; returns the report.
    `judge`: a GGUF that also compares the base and tuned generations pairwise. `reward_draws`:
    generations per request the reward table averages (default: 4 for a grpo round, whose
    report is read for a reward gain, 1 otherwise); every other figure reads the first."""
    emit = emit or (lambda _e: None)
    spec = run.read_spec()
    task = task or run_task(run)
    rows = (read_rows(run.split_path("test")) or read_rows(run.split_path("valid")))[:max_rows]
    if not rows:
        raise DataError(f"run {run.id} has no test or validation examples to evaluate on")
    train_rows = read_rows(run.split_path("train"))
    if spec.head:  # no GGUF: the head is an HF folder; the base few-shot runs as the recipe's GGUF type
        from localft.eval.classify import CLASSIFY_QUANT

        tuned_gguf = None
        quant = CLASSIFY_QUANT
    else:
        tuned_gguf = as_model(tuned_gguf) if tuned_gguf else tuned_model(run)
        quant = quant_of_model(tuned_gguf)
        if tuned_gguf.adapter is not None and base_gguf is None:  # the user's own file is the base
            base_gguf = tuned_gguf.gguf
    if base_gguf is None:
        from localft.eval.base_gguf import base_gguf_path

        emit(Stage("eval", 0, 4, f"base model as {quant} GGUF"))
        base_gguf = base_gguf_path(spec.model, quant)
    tokenizer = tokenizer_for(run, spec.model)
    head = {"run": run.id, "model": spec.model, "task": task, "quant": quant, "base_gguf": str(base_gguf),
            "tuned_gguf": model_label(tuned_gguf) if tuned_gguf else None, "max_tokens": max_tokens}  # fmt: skip
    if task == "classify" and judge:
        raise ConfigError("a classify run is scored against its labels; --judge compares generations")
    if spec.head:
        from localft.eval.head import head_report

        return _finish(
            {**head, **head_report(run, rows, train_rows, base_gguf, tokenizer, emit, samples)}, run, emit
        )
    if task == "classify":
        from localft.eval.classify import classify_report

        report = {
            **head,
            **classify_report(run, rows, train_rows, base_gguf, tuned_gguf, tokenizer, emit, samples),
        }
        return _finish(report, run, emit)
    picked = rows[:samples]
    if task == "domain":  # continue the opening of each held-out passage
        prompts, real = (list(x) for x in zip(*(passage_prompt(r["text"]) for r in picked), strict=True))
    else:
        prompts = [split_prompt(r)[0] for r in picked]
        real = [split_prompt(r)[1] for r in picked]

    rewarded = task in ("style", "json")  # the rewards a grpo round trains on, on the held-out requests
    draws = (reward_draws or (ROUND_REWARD_DRAWS if spec.method == "grpo" else 1)) if rewarded else 1
    models = [("base", base_gguf), *_sft_model(spec, quant), ("tuned", tuned_gguf)]
    stages = len(models) + 2
    results = {}
    for i, (who, gguf) in enumerate(models):

        def progress(what: str, i=i, who=who) -> None:
            emit(Stage("eval", 1 + i, stages, f"{who}: {what}"))

        ppl, replies = score_model(gguf, tokenizer, rows, prompts, max_tokens, spec.seed, progress, draws)
        results[who] = ppl, [r[0] for r in replies], replies
    shown = [p if isinstance(p, str) else p[-1]["content"] for p in prompts]
    report: dict = {
        **head, "test_rows": len(rows), "generations": len(prompts),
        "metrics": {"perplexity": {w: results[w][0] for w in results}},
        "samples": [
            {"prompt": p, "real": r} | {w: results[w][1][j] for w in results}
            for j, (p, r) in enumerate(zip(shown, real, strict=True))
        ],
        "plots": {},
    }  # fmt: skip
    overlap = {w: overlap_scores(results[w][1], real) for w in results}
    for key in ("rouge_l", "bleu"):
        report["metrics"][key] = {w: overlap[w][key] for w in results}
    if task == "json":
        scores = {w: json_scores(results[w][1], real) for w in results}
        for key in ("valid_json_rate", "key_match_rate", "field_accuracy"):
            report["metrics"][key] = {w: scores[w][key] for w in results}
    elif task == "style":
        train_replies = [split_prompt(r)[1] for r in train_rows]
        _add_style(report, results, [split_prompt(r)[1] for r in rows], train_replies)
    if rewarded:
        from localft.eval.rewards import RowScorer, paired_gain

        scorer = RowScorer.for_run(run, spec)
        report["rewards"] = {w: scorer.held_out(picked, results[w][2]) for w in results}
        tuned = report["rewards"]["tuned"]
        report["reward_gains"] = {
            w: paired_gain(tuned, r) for w, r in report["rewards"].items() if w != "tuned"
        }
        report["metrics"]["reward"] = {w: report["rewards"][w]["mean"] for w in results}
    if judge:
        from localft.eval.judge import judge_pairs

        report["judge"] = judge_pairs(
            Path(judge), shown, results["base"][1], results["tuned"][1],
            lambda what: emit(Stage("eval", stages - 1, stages, what)),
        )  # fmt: skip
        report["metrics"]["judge_score"] = report["judge"]["score"]
    return _finish(report, run, emit, stages)


def _finish(report: dict, run: RunDir, emit: Emit, stages: int = 4) -> dict:
    emit(Stage("eval", stages - 1, stages, "report"))
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
        return [("sft", tuned_model(source, quant))]
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
