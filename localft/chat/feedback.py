"""Judgements a person makes in the chat (good/bad marks, a pick between two drafts, an edit, a
blind pick), appended to the run's feedback.jsonl as they happen (one fsynced line each), and the
chat commands that make them: what `localft chat` and the dashboard's Chat screen both call."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from localft.data.pairs import Judged, Pair, parse_row
from localft.errors import DataError, LocalftError

FEEDBACK_FILE = "feedback.jsonl"
DRAFT_MIN_TEMPERATURE = 0.7  # two greedy drafts would be the same reply
COMMANDS_HELP = "/good, /bad, /two TEXT (two drafts), /pick 1|2, /edit TEXT"


class FeedbackError(LocalftError):
    """A chat command that cannot apply now (nothing to rate, no drafts to pick from)."""


def feedback_path(run_path: Path) -> Path:
    return Path(run_path) / FEEDBACK_FILE


class FeedbackLog:
    """The run's feedback.jsonl: each line is a preference row (see localft.data.pairs) plus its
    kind and time, flushed and fsynced before the call returns, so nothing is lost if the app dies."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, kind: str, row: Pair | Judged, **extra) -> dict:
        try:  # what is recorded must read back as preference data
            parse_row(row.to_row(), "this judgement")
        except DataError as exc:
            raise FeedbackError(str(exc)) from None
        record = {"kind": kind, "time": round(time.time(), 3), **row.to_row(), **extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record

    def rate(self, prompt: list[dict], reply: str, good: bool) -> dict:
        return self.append("rating", Judged(prompt, reply, good))

    def pick(self, prompt: list[dict], chosen: str, rejected: str) -> dict:
        return self.append("pick", Pair(prompt, chosen, rejected))

    def edit(self, prompt: list[dict], edited: str, original: str) -> dict:
        return self.append("edit", Pair(prompt, edited, original))

    def blind(self, prompt: list[dict], picked: str, other: str, draft_taken_for_real: bool) -> dict:
        """A "Which one is you?" answer: what the person took for theirs is the chosen side."""
        return self.append("blind", Pair(prompt, picked, other), draft_taken_for_real=draft_taken_for_real)


def read_feedback(path: Path) -> list[Pair | Judged]:
    """Every judgement in a feedback file; a torn last line (the app died mid-write) is skipped."""
    rows = []
    if not Path(path).is_file():
        return rows
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(parse_row(json.loads(line), f"{path}:{n}"))
        except (ValueError, LocalftError):
            if n < len(lines):
                raise
    return rows


@dataclass(frozen=True)
class FeedbackCounts:
    pairs: int  # what a DPO round trains on (marks of one prompt pair up)
    marks: int  # good/bad marks (KTO uses them unpaired)

    def describe(self) -> str:
        return f"{self.pairs} pair{'s' * (self.pairs != 1)}, {self.marks} mark{'s' * (self.marks != 1)}"


def feedback_counts(run_path: Path) -> FeedbackCounts:
    from localft.data.pairs import as_pairs

    rows = read_feedback(feedback_path(run_path))
    return FeedbackCounts(len(as_pairs(rows)), sum(isinstance(r, Judged) for r in rows))


@dataclass
class ChatFeedback:
    """The feedback commands over one ChatSession; `log` is None when the chat has no run."""

    session: object  # localft.chat.session.ChatSession
    log: FeedbackLog | None
    drafts: list[str] = field(default_factory=list)
    draft_prompt: list[dict] = field(default_factory=list)
    draft_text: str = ""

    def _log(self) -> FeedbackLog:
        if self.log is None:
            raise FeedbackError(
                "feedback is kept with a run: chat with a run (`localft chat RUN`) to record it"
            )
        return self.log

    def _last(self) -> tuple[list[dict], str]:
        history = self.session.history()
        if not history or history[-1]["role"] != "assistant":
            raise FeedbackError("no reply to judge yet; say something first")
        return history[:-1], history[-1]["content"]

    def rate(self, good: bool) -> str:
        prompt, reply = self._last()
        self._log().rate(prompt, reply, good)
        return f"marked {'good' if good else 'bad'}"

    def edit(self, text: str) -> str:
        """The edit becomes the chosen answer, the original the rejected one; the chat goes on
        from the edit."""
        prompt, original = self._last()
        if not text.strip():
            raise FeedbackError("write the reply as it should have been: /edit TEXT")
        if text.strip() == original.strip():
            raise FeedbackError("the edit is the same as the reply; nothing to learn from")
        self._log().edit(prompt, text, original)
        self.session.messages[-1] = {"role": "assistant", "content": text}
        return "edit kept (edit = chosen, original = rejected)"

    def draft_seeds(self) -> list[int]:
        turn = len(self.session.messages)
        return [self.session.seed + 7919 * turn + k for k in (1, 2)]

    def stream_draft(self, text: str, index: int):
        """Draft `index` (0 or 1) of a reply to `text`, piece by piece; it is not kept in the chat
        until picked."""
        self._log()
        if index == 0:
            self.drafts, self.draft_text = [], text
            self.draft_prompt = [*self.session.history(), {"role": "user", "content": text}]
        yield from self.session.draft(text, self.draft_seeds()[index], DRAFT_MIN_TEMPERATURE)
        self.drafts.append(self.session.last_draft)

    def two_drafts(self, text: str) -> list[str]:
        for index in (0, 1):
            for _ in self.stream_draft(text, index):
                pass
        return self.drafts

    def pick(self, choice: str) -> str:
        if len(self.drafts) != 2:
            raise FeedbackError("no two drafts to pick from; ask for them with /two TEXT")
        if choice.strip() not in ("1", "2"):
            raise FeedbackError("pick 1 or 2")
        k = int(choice) - 1
        chosen, rejected = self.drafts[k], self.drafts[1 - k]
        self.session.keep(self.draft_text, chosen)
        self.drafts = []
        if chosen.strip() == rejected.strip():
            return "the two drafts are the same; kept it, nothing recorded"
        self._log().pick(self.draft_prompt, chosen, rejected)
        return f"kept draft {k + 1}"

    def command(self, line: str) -> str | None:
        """Run a feedback command typed in the chat; None when `line` is not one."""
        cmd, _, arg = line.strip().partition(" ")
        if cmd in ("/good", "/bad"):
            return self.rate(cmd == "/good")
        if cmd == "/edit":
            return self.edit(arg)
        if cmd == "/pick":
            return self.pick(arg)
        return None
