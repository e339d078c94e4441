"""Write the evaluation as eval/report.json and eval/report.md, and the headline table for the CLI."""

from __future__ import annotations

from pathlib import Path

from localft.atomic import atomic_write_json, atomic_write_text
from localft.eval.metrics import HEADLINE, fmt_metric


def headline_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(label, base, tuned, verdict) for each metric the report has."""
    rows = []
    metrics = report["metrics"]
    for key, label, lower_better in HEADLINE:
        if key not in metrics:
            continue
        base, tuned = metrics[key]["base"], metrics[key]["tuned"]
        better = tuned < base if lower_better else tuned > base
        verdict = "better" if better else ("same" if tuned == base else "worse")
        rows.append((label, fmt_metric(base), fmt_metric(tuned), verdict))
    return rows


def sft_values(report: dict) -> dict[str, str]:
    """label -> the SFT run's figure, for a preference round's report (empty otherwise)."""
    metrics = report["metrics"]
    return {
        label: fmt_metric(metrics[key]["sft"]) for key, label, _ in HEADLINE if "sft" in metrics.get(key, {})
    }


def reward_markdown(rewards: dict, gains: dict | None = None) -> list[str]:
    """Each model's reward on the held-out requests, with its spread, the interval of its mean and
    each reward's own mean; then the tuned model's gain over each other model on the same requests
    (paired)."""
    first = next(iter(rewards.values()))
    weights, draws = first["weights"], first.get("draws", 1)
    names = list(first.get("parts", {}))
    each = "one generation per request" if draws == 1 else f"the mean of {draws} generations per request"
    lines = ["## Reward on held-out requests", "",
             f"What a grpo round of this run trains on ({', '.join(f'{k} x {v:g}' for k, v in weights.items())}), "
             f"{each}; the interval is 95% (bootstrap) for the mean.", "",
             "| Model | Mean | Spread | 95% interval | Requests |" + "".join(f" {n} |" for n in names),
             "|---|---|---|---|---|" + "---|" * len(names)]  # fmt: skip
    for who, r in rewards.items():
        lines.append(
            f"| {who} | {r['mean']:.3f} | ± {r['std']:.3f} | {r['low']:.3f} to {r['high']:.3f} | {r['n']} |"
            + "".join(f" {r['parts'][n]:.3f} |" for n in names)
        )
    for who, g in (gains or {}).items():
        lines.append(
            f"\nTuned - {who} on the same {g['n']} requests: {g['mean']:+.3f} (95% interval {g['low']:+.3f} to "
            f"{g['high']:+.3f}); higher on {g['higher']}, lower on {g['lower']}."
        )
    return [*lines, ""]


def _per_example(report: dict) -> str:
    if "classification" in report:
        return "one label each, held to the label set by a grammar"
    return f"{report['generations']} generations each, up to {report['max_tokens']} tokens"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text or "(empty)").splitlines() or ["(empty)"])


def render_markdown(report: dict) -> str:
    if report.get("head"):  # a classification head: no tuned GGUF, a third column
        from localft.eval.head import head_markdown

        return head_markdown(report)
    lines = [
        f"# Evaluation of run {report['run']}",
        "",
        f"Base model `{report['model']}` vs the fine-tuned model, both as `{report['quant']}` GGUF "
        f"through llama.cpp, on {report['test_rows']} held-out test examples "
        f"({_per_example(report)}).",
        "",
    ]
    sft = sft_values(report)
    if sft:  # a preference round: base -> SFT -> preference-tuned
        lines += ["| Metric | Base | SFT | Tuned | |", "|---|---|---|---|---|"]
        lines += [f"| {label} | {b} | {sft[label]} | {t} | {v} |" for label, b, t, v in headline_rows(report)]
    else:
        lines += ["| Metric | Base | Tuned | |", "|---|---|---|---|"]
        lines += [f"| {label} | {b} | {t} | {v} |" for label, b, t, v in headline_rows(report)]
    lines.append("")
    if report.get("blind"):
        blind = report["blind"]
        lines += [f"Which one is you? (blind test): the tuned model's draft was taken for the real post in "
                  f"{blind['drafts_taken_for_real']} of {blind['answers']} answers ({blind['share']:.0%}).", ""]  # fmt: skip
    if "rewards" in report:
        lines += reward_markdown(report["rewards"], report.get("reward_gains"))
    if "classification" in report:
        from localft.eval.classify import classification_markdown

        lines += classification_markdown(report)
    if "judge" in report:
        from localft.eval.judge import judge_markdown

        lines += judge_markdown(report["judge"])
    if "fingerprints" in report:
        fps = report["fingerprints"]
        lines += ["## Style fingerprint", "", "| Feature | Real | Base | Tuned |", "|---|---|---|---|"]
        for k, real in fps["real"]["means"].items():
            lines.append(
                f"| {k.replace('_', ' ')} | {fmt_metric(real)} | {fmt_metric(fps['base']['means'][k])} "
                f"| {fmt_metric(fps['tuned']['means'][k])} |"
            )
        lines.append("")
    if "leak" in report:
        lines += ["## Verbatim leak check", ""]
        for who in (w for w in ("base", "sft", "tuned") if w in report["leak"]):
            leak = report["leak"][who]
            lines.append(
                f"- {who}: longest run shared with a training post is {leak['longest']} words "
                f"(mean {leak['mean_longest']:.1f}); {len(leak['flagged'])} flagged as memorized"
            )
            lines += [f'  - "{_md_escape(p)}"' for p in leak["flagged"]]
        lines.append("")
    for title, name in (("Training curves", "training_curves"), ("Fingerprint comparison", "fingerprints"),
                        ("Confusion matrices", "confusion")):  # fmt: skip
        if name in report.get("plots", {}):
            lines += [f"## {title}", "", f"![{title}]({Path(report['plots'][name]).name})", ""]
    lines += ["## Samples", ""]
    for i, s in enumerate(report["samples"], 1):
        lines += [f"### Sample {i}", "", f"**Prompt:** {_md_escape(s['prompt'])}", ""]
        for who in ("real", "base", "sft", "tuned"):
            if who in s:
                lines += [f"**{who.upper() if who == 'sft' else who.capitalize()}:**", "", _quote(s[who]), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: dict, eval_dir: Path) -> tuple[Path, Path]:
    eval_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = eval_dir / "report.json", eval_dir / "report.md"
    atomic_write_json(json_path, report)
    atomic_write_text(md_path, render_markdown(report))
    return json_path, md_path
