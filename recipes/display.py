"""Terminal display for a recipe run: a line per stage, a spinner with the current step, the summary."""

from __future__ import annotations

import shlex
import time

from localft.events import Log, Stage
from localft.recipes.pipeline import STAGES, RecipeResult
from localft.run.state import stage_line


class RecipeDisplay:
    """Receives the recipe's events; training itself is shown by `localft.cli.progress.watch_run`."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.status = None
        self.started = time.monotonic()

    def __call__(self, event) -> None:
        if isinstance(event, Stage) and event.name == "recipe":
            self._stop_spinner()
            if event.detail != "done":
                elapsed = time.monotonic() - self.started
                self.console.print(
                    f"[bold cyan][{event.done + 1}/{len(STAGES)}] {event.detail}[/]  [dim]{elapsed:.0f}s[/]"
                )
        elif isinstance(event, Stage):
            text = (
                stage_line(event)
                if event.done < event.total
                else f"{event.name}: {event.detail}".rstrip(": ")
            )
            if event.done >= event.total:
                self._stop_spinner()
                self.console.print(f"  {text}")
            elif self.console.is_terminal:
                if self.status is None:
                    self.status = self.console.status(text)
                    self.status.start()
                else:
                    self.status.update(text)
        elif isinstance(event, Log) and event.message.startswith("plan: "):
            self.console.print(f"  {event.message}", highlight=False)
        elif isinstance(event, Log) and event.level != "info":
            self.console.print(f"  {event.level}: {event.message}")

    def _stop_spinner(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self._stop_spinner()


def summary_lines(result: RecipeResult, elapsed: float | None = None) -> list[str]:
    """Where the files are, how to use them, and the headline figures."""
    from localft.disk import fmt_bytes

    run, gguf = result.run, result.gguf
    took = f" in {elapsed / 60:.1f} min" if elapsed else ""
    if gguf is None:  # a classification head: an HF folder, no chat
        return [f"Done{took}. Run {run.id}", f"  HF folder  {result.report['merged']} (a GGUF cannot carry a "
                "classification head; load it with AutoModelForSequenceClassification)",
                f"  Report     {run.eval_dir / 'report.md'}", *_figures(result.report)]  # fmt: skip
    lines = [
        f"Done{took}. Run {run.id}",
        f"  GGUF       {gguf} ({fmt_bytes(gguf.stat().st_size)})",
        f"  Report     {run.eval_dir / 'report.md'}",
    ]
    if result.modelfile:
        lines.append(f"  Modelfile  {result.modelfile}")
    lines += ["", "Chat with it (with the system prompt it trained on):", f"  localft chat {run.id}"]
    if result.report.get("base_gguf"):
        lines.append(f"  localft chat {run.id} --compare {shlex.quote(result.report['base_gguf'])}")
    if result.modelfile:
        name = gguf.stem.rsplit("-", 1)[0].lower()
        lines += [f"  ollama create {name} -f {shlex.quote(str(result.modelfile))} && ollama run {name}"]
    return lines + _figures(result.report)


def _figures(report: dict) -> list[str]:
    """The headline table (base, tuned) and the verdict."""
    from localft.eval.report import headline_rows

    lines = []
    rows = headline_rows(report)
    if rows:
        width = max(len(r[0]) for r in rows)
        lines += ["", f"  {'':<{width}}  {'base':>9}  {'tuned':>9}"]
        lines += [f"  {label:<{width}}  {b:>9}  {t:>9}  {v}" for label, b, t, v in rows]
    if report.get("verdict"):
        lines += ["", f"  {report['verdict']}"]
    return lines
