""" "Which one is you?": a held-out request with the real post and the tuned model's draft in random
order; the person picks theirs (localft.eval.blind, as `localft eval --blind` does)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static

from localft.errors import LocalftError
from localft.run.folder import RunDir
from localft.tui.messages import BlindProgress
from localft.tui.workers import ReportsWorkerErrors, background


class BlindScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("1", "pick(1)", "1 is me"),
        Binding("2", "pick(2)", "2 is me"),
        Binding("s", "skip", "Skip"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, run_path: Path, count: int = 8, max_tokens: int = 120) -> None:
        super().__init__()
        self.run = RunDir(Path(run_path))
        self.count, self.max_tokens = count, max_tokens
        self.questions: list = []
        self.index = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Which one is you?", id="blind-status")
        yield Static("", id="blind-request")
        with Horizontal(id="blind-options"):
            for k in (1, 2):
                with VerticalScroll(classes="transcript", id=f"option-{k}"):
                    yield Static("", classes="transcript-text")
        with Horizontal(id="draft-picks"):
            yield Button("1 is me", id="blind-1", compact=True)
            yield Button("2 is me", id="blind-2", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#draft-picks").display = False
        self.draft()

    @background("blind")
    def draft(self) -> None:
        from localft.eval.blind import blind_questions

        def progress(done: int, total: int) -> None:
            self.post_message(BlindProgress(done, total))

        try:
            questions = blind_questions(self.run, self.count, self.max_tokens, progress=progress)
        except LocalftError as exc:
            self.post_message(BlindProgress(0, 0, error=str(exc)))
            return
        self.post_message(BlindProgress(len(questions), len(questions), questions))

    def on_blind_progress(self, message: BlindProgress) -> None:
        status = self.query_one("#blind-status", Static)
        if message.error:
            status.update(f"[red]{message.error}[/red]")
        elif message.questions is None:
            status.update(f"The model drafts each held-out request: {message.done}/{message.total}")
        else:
            self.questions, self.index = message.questions, 0
            self.show()

    def show(self) -> None:
        from localft.eval.blind import blind_summary

        status = self.query_one("#blind-status", Static)
        if self.index >= len(self.questions):
            self.query_one("#draft-picks").display = False
            summary = blind_summary(self.run)
            status.update(
                f"Done: the draft was taken for the real post in {summary['drafts_taken_for_real']} of "
                f"{summary['answers']} answers ({summary['share']:.0%}); each pick is a preference pair."
                if summary else "Done; no answers recorded."
            )  # fmt: skip
            return
        q = self.questions[self.index]
        status.update(f"[{self.index + 1}/{len(self.questions)}] Which one is you? 1 or 2 (s skips)")
        self.query_one("#blind-request", Static).update(f"[b]request[/b] {q.request}")
        for k, text in enumerate(q.options, 1):
            self.query_one(f"#option-{k}").border_title = str(k)
            self.query_one(f"#option-{k} Static", Static).update(text)
        self.query_one("#draft-picks").display = True

    def action_pick(self, k: int) -> None:
        from localft.eval.blind import answer

        if self.index >= len(self.questions):
            return
        fooled = answer(self.run, self.questions[self.index], k)
        self.notify("that was the model's draft" if fooled else "right, that was you")
        self.index += 1
        self.show()

    def action_skip(self) -> None:
        if self.index < len(self.questions):
            self.index += 1
            self.show()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("blind-1", "blind-2"):
            self.action_pick(int(event.button.id[-1]))
