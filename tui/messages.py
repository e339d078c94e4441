"""Every message the dashboard's workers post to the UI thread. Workers never touch widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from localft.events import Event


class RunEvents(Message):
    """New events read from a run's events.jsonl (or emitted by an export).

    Frequent batches coalesce: a pending batch absorbs this one's events, so the queue delivers
    fewer, larger batches and no event (no loss point) is ever dropped."""

    def __init__(self, source: str, events: list[Event], reset: bool = False) -> None:
        super().__init__()
        self.source = source
        self.events = list(events)
        self.reset = reset

    def can_replace(self, message: Message) -> bool:
        if not (isinstance(message, RunEvents) and message.source == self.source):
            return False
        if not message.reset:  # a pending reset makes this batch obsolete anyway
            self.events.extend(message.events)  # O(new events): a long replay stays linear
            message.events = self.events
            message.reset = self.reset
        return True


class TailEnded(Message):
    """The tail of a run's events stopped (the run finished, or the screen stopped following)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source


class MachineReport(Message):
    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__()
        self.report = report


class RunsListed(Message):
    def __init__(self, runs: list) -> None:
        super().__init__()
        self.runs = runs


class DataReportReady(Message):
    """The data report for the chosen source and the training data the plan is sized from (made
    for the form's `key`), or the one-line error."""

    def __init__(
        self, source: str, text: str = "", data: Any = None, key: tuple = (), error: str = ""
    ) -> None:
        super().__init__()
        self.source = source
        self.text = text
        self.data = data
        self.key = key
        self.error = error


class PlanReady(Message):
    """The plan for the form's settings (localft.plan.planner.Plan), as the lines every face shows."""

    def __init__(self, lines: list[str], fits: bool | None, plan: Any = None) -> None:
        super().__init__()
        self.lines = lines
        self.fits = fits
        self.plan = plan


class RunLaunched(Message):
    def __init__(self, run_path: Path) -> None:
        super().__init__()
        self.run_path = run_path


class ExportFinished(Message):
    def __init__(self, report: Any = None, error: str = "") -> None:
        super().__init__()
        self.report = report
        self.error = error


class ChatText(Message):
    """Streamed chat tokens for one side ("tuned" or "base"); pending pieces merge, none is lost."""

    def __init__(self, side: str, text: str) -> None:
        super().__init__()
        self.side = side
        self.text = text

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, ChatText) and message.side == self.side:
            message.text = self.text + message.text
            return True
        return False


class ChatDone(Message):
    def __init__(self, side: str, error: str = "") -> None:
        super().__init__()
        self.side = side
        self.error = error


class WorkFailed(Message):
    """A worker hit a LocalftError: shown as a notification with the CLI's one-line text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RecipePlanned(Message):
    """A recipe's settings for this machine (the spec, and form field -> value), or why it cannot
    run here."""

    def __init__(self, recipe: str, values: dict[str, str], error: str = "", base: Any = None) -> None:
        super().__init__()
        self.recipe = recipe
        self.values = values
        self.error = error
        self.base = base


class BlindProgress(Message):
    """The blind test's drafts: `done` of `total` written; `questions` once all are ready (or `error`)."""

    def __init__(self, done: int, total: int, questions: list | None = None, error: str = "") -> None:
        super().__init__()
        self.done, self.total = done, total
        self.questions = questions
        self.error = error
