"""`localft eval RUN`: base vs tuned through the exported GGUF; prints the headline table."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_command(
    run: str = typer.Argument(..., help="Run id (or a unique part of it) or path."),
    quant: str = typer.Option(None, "--quant", help="Which of the run's GGUFs to evaluate (default Q4_K_M)."),
    base_gguf: Path = typer.Option(
        None, "--base-gguf", help="Base model GGUF to compare with (default: made once and cached)."
    ),
    samples: int = typer.Option(8, "--samples", help="Test prompts to generate from, per model."),
    max_tokens: int = typer.Option(120, "--max-tokens", help="Longest generation in tokens."),
    judge: Path = typer.Option(
        None, "--judge", help="A local GGUF that judges base vs tuned replies pairwise, in both orders."
    ),
) -> None:
    """Evaluate a run on its test split: perplexity, ROUGE-L/BLEU, the task's own figures (style
    fingerprint and leak check, JSON shape, classification scores), samples, and an optional judge."""
    from localft.eval.evaluate import evaluate_run, tuned_gguf_path
    from localft.eval.report import headline_rows
    from localft.run_state import describe
    from localft.runs import open_run

    r = open_run(run)

    def show(event) -> None:
        line = describe(event)
        if line:
            print(line)

    report = evaluate_run(
        r, base_gguf=base_gguf, tuned_gguf=tuned_gguf_path(r, quant), samples=samples,
        max_tokens=max_tokens, judge=judge, emit=show,
    )  # fmt: skip
    rows = headline_rows(report)
    width = max(len(x[0]) for x in rows)
    print(f"{'':<{width}}  {'base':>9}  {'tuned':>9}")
    for label, b, t, verdict in rows:
        print(f"{label:<{width}}  {b:>9}  {t:>9}  {verdict}")
    print(f"report: {r.eval_dir / 'report.md'}")
