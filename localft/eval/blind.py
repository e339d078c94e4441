""" "Which one is you?": a held-out request with the real post and the tuned model's draft in
random order; the person picks. Each answer is a preference pair in the run's feedback.jsonl, and
the share of drafts taken for real goes into the eval report."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_json
from localft.errors import DataError
from localft.run.folder import RunDir

BLIND_FILE = "blind.json"


@dataclass(frozen=True)
class BlindQuestion:
    prompt: list[dict]
    real: str
    draft: str
    draft_first: bool

    @property
    def options(self) -> tuple[str, str]:
        return (self.draft, self.real) if self.draft_first else (self.real, self.draft)

    @property
    def request(self) -> str:
        return self.prompt[-1]["content"]


def blind_questions(
    run: RunDir,
    count: int = 8,
    max_tokens: int = 120,
    gguf: Path | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[BlindQuestion]:
    """Questions from the test split (else validation): the run's GGUF drafts each request."""
    from localft.eval.gguf_model import GgufModel
    from localft.eval.inputs import read_rows, split_prompt, tokenizer_for, tuned_model

    spec = run.read_spec()
    rows = [
        r for r in read_rows(run.split_path("test")) or read_rows(run.split_path("valid")) if "messages" in r
    ]
    if not rows:
        raise DataError(f"run {run.id} has no held-out requests for the blind test")
    rows = rows[:count]
    prompts, real = zip(*(split_prompt(r) for r in rows), strict=True)
    with GgufModel(gguf or tuned_model(run), tokenizer_for(run, spec.model), n_ctx=2048) as model:
        drafts = model.generate_all(list(prompts), max_tokens, spec.seed + 5000, progress)
    order = random.Random(spec.seed + len(read_answers(run)))
    return [
        BlindQuestion(p, r, d, order.random() < 0.5) for p, r, d in zip(prompts, real, drafts, strict=True)
    ]


def read_answers(run: RunDir) -> list[dict]:
    try:
        return json.loads((run.eval_dir / BLIND_FILE).read_text(encoding="utf-8"))["answers"]
    except (FileNotFoundError, ValueError, KeyError):
        return []


def answer(run: RunDir, question: BlindQuestion, picked: int) -> bool:
    """Record that the person took option `picked` (1 or 2) for theirs; True when that was the
    model's draft. The pick is chosen, the other option rejected, in feedback.jsonl."""
    from localft.chat.feedback import FeedbackLog, feedback_path

    options = question.options
    draft_taken = options[picked - 1] == question.draft and question.draft != question.real
    FeedbackLog(feedback_path(run.path)).blind(
        question.prompt, options[picked - 1], options[2 - picked], draft_taken_for_real=draft_taken
    )
    answers = [*read_answers(run), {"request": question.request, "draft_taken_for_real": draft_taken}]
    atomic_write_json(run.eval_dir / BLIND_FILE, {"answers": answers})
    _update_report(run)
    return draft_taken


def blind_summary(run: RunDir) -> dict | None:
    answers = read_answers(run)
    if not answers:
        return None
    taken = sum(a["draft_taken_for_real"] for a in answers)
    return {"answers": len(answers), "drafts_taken_for_real": taken, "share": taken / len(answers)}


def _update_report(run: RunDir) -> None:
    """The eval report, where there is one, carries the blind test's share beside its metrics."""
    from localft.eval.report import write_report

    try:
        report = json.loads((run.eval_dir / "report.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return
    report["blind"] = blind_summary(run)
    write_report(report, run.eval_dir)
