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
    reward_draws: int = typer.Option(
        None,
        "--reward-draws",
        min=1,
        help="Generations per request the reward table averages (default: 4 for a grpo round, else 1).",
    ),
    blind: bool = typer.Option(
        False, "--blind", help="Which one is you? Pick the real post from the model's draft, blind."
    ),
    judge: Path = typer.Option(
        None, "--judge", help="A local GGUF that judges base vs tuned replies pairwise, in both orders."
    ),
) -> None:
    """Evaluate a run on its test split: perplexity, ROUGE-L/BLEU, the task's own figures (style
    fingerprint and leak check, JSON shape, classification scores), samples, and an optional judge."""
    from localft.cli.progress import stage_bars
    from localft.eval.evaluate import evaluate_run
    from localft.eval.inputs import tuned_model
    from localft.eval.report import headline_rows, sft_values
    from localft.run.folder import open_run

    r = open_run(run)
    if blind:
        blind_test(r, tuned_model(r, quant), samples, max_tokens)
        return

    tuned_gguf = None if r.read_spec().head else tuned_model(r, quant)  # a head is an HF folder
    with stage_bars() as emit:
        report = evaluate_run(
            r, base_gguf=base_gguf, tuned_gguf=tuned_gguf, samples=samples,
            max_tokens=max_tokens, reward_draws=reward_draws, judge=judge, emit=emit,
        )  # fmt: skip
    rows = headline_rows(report)
    sft = sft_values(report)  # a preference round: its SFT run's column between base and tuned
    width = max(len(x[0]) for x in rows)
    print(f"{'':<{width}}  {'base':>9}  " + (f"{'sft':>9}  " if sft else "") + f"{'tuned':>9}")
    for label, b, t, verdict in rows:
        print(f"{label:<{width}}  {b:>9}  " + (f"{sft[label]:>9}  " if sft else "") + f"{t:>9}  {verdict}")
    if report.get("chat_run"):  # a head run: the chat classifier of the same test split beside it
        m = report["metrics"]
        print(f"fine-tuned chat (run {report['chat_run']}): accuracy {m['accuracy']['chat']:.3f}, "
              f"macro-F1 {m['macro_f1']['chat']:.3f}, {m['prompt_tokens']['chat']:.1f} prompt tokens per query")  # fmt: skip
    print(f"report: {r.eval_dir / 'report.md'}")


def blind_test(run, gguf: Path, count: int, max_tokens: int) -> None:
    """The terminal's "Which one is you?": each held-out request with two answers, one of them
    the real post; the person types which is theirs."""
    from localft.cli.progress import stage_bars
    from localft.eval.blind import answer, blind_questions, blind_summary
    from localft.events import Stage

    with stage_bars() as emit:
        questions = blind_questions(
            run, count, max_tokens, gguf, lambda done, total: emit(Stage("draft", done, total, gguf.name))
        )
    for i, q in enumerate(questions, 1):
        print(f"\n[{i}/{len(questions)}] request: {q.request}")
        for k, text in enumerate(q.options, 1):
            print(f"--- {k} ---\n{text}")
        while (pick := input("Which one is you? [1/2, s skips, q quits] ").strip().lower()) not in (
            "1",
            "2",
            "s",
            "q",
        ):
            pass
        if pick == "q":
            break
        if pick in ("1", "2"):
            fooled = answer(run, q, int(pick))
            print("that was the model's draft" if fooled else "right, that was you")
    summary = blind_summary(run)
    if summary:
        print(f"drafts taken for real: {summary['drafts_taken_for_real']} of {summary['answers']} "
              f"({summary['share']:.0%}); each pick is a preference pair in {run.path / 'feedback.jsonl'}")  # fmt: skip
