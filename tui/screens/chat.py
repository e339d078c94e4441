"""Chat with an exported GGUF through llama.cpp; tokens stream from a worker thread, side by side
with the base model when asked. With a run, the chat takes feedback for its next training round
(marks, two drafts to pick from, edits: localft.chat.feedback, as `localft chat` does)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Static

from localft.chat.run_chat import ChatModel, base_chat_model, run_chat_model, run_chat_spec
from localft.config import ChatSpec, field_help
from localft.errors import LocalftError
from localft.run.folder import RunDir
from localft.tui.messages import ChatDone, ChatText
from localft.tui.screens.chat_feedback import ChatFeedbackActions
from localft.tui.workers import ReportsWorkerErrors, background

HELP = field_help(ChatSpec)
SAMPLING = {"temperature": "temp", "top_p": "top_p", "max_tokens": "max tokens"}  # field -> label


class Transcript(VerticalScroll):
    """One conversation: finished turns plus the reply being streamed."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="transcript-text")

    def on_mount(self) -> None:
        self.turns: list[str] = []
        self.reply = ""

    def add_user(self, text: str) -> None:
        self.turns.append(f"[b]you[/b] {escape(text)}")
        self.reply = ""
        self.redraw()

    def add_text(self, text: str) -> None:
        self.reply += text
        self.redraw()

    def end_reply(self, note: str = "") -> None:
        self.turns.append(f"[b]{escape(self.border_title or 'model')}[/b] {escape(self.reply)}" + note)
        self.reply = ""
        self.redraw()

    def clear(self) -> None:
        self.turns, self.reply = [], ""
        self.redraw()

    def replace_last_reply(self, text: str) -> None:
        self.turns[-1] = f"[b]{escape(self.border_title or 'model')}[/b] {escape(text)}"
        self.redraw()

    def redraw(self) -> None:
        parts = list(self.turns)
        if self.reply:
            parts.append(f"[b]{escape(self.border_title or 'model')}[/b] {escape(self.reply)}▌")
        self.query_one(Static).update("\n\n".join(parts))
        self.scroll_end(animate=False)


class ChatScreen(ChatFeedbackActions, ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("escape", "back", "Back / stop"),
        Binding("ctrl+g", "stop", "Stop reply"),
        Binding("ctrl+r", "reset", "New chat"),
        Binding("ctrl+b", "toggle_base", "Base vs tuned"),
        Binding("ctrl+y", "rate(True)", "Good"),
        Binding("ctrl+n", "rate(False)", "Bad"),
        Binding("ctrl+t", "two_drafts", "Two drafts"),
        Binding("ctrl+o", "edit", "Edit reply"),
        Binding("ctrl+l", "blind", "Which one is you?"),
    ]

    def __init__(self, gguf: Path | None = None, run_path: Path | None = None) -> None:
        super().__init__()
        self.run = RunDir(Path(run_path)) if run_path else None
        self.missing = "No GGUF to chat with: export the run first."
        try:  # a merged GGUF, or the user's base file with the run's adapter.gguf on it
            self.model = ChatModel(gguf) if gguf else run_chat_model(self.run) if self.run else None
        except LocalftError as exc:  # the base is gone from Ollama / LM Studio
            self.model, self.missing = None, str(exc)
        self.sessions: dict[str, object] = {}
        self.busy: set[str] = set()
        self.feedback = None  # localft.chat.feedback.ChatFeedback over the tuned session, once loaded
        self.editing = False  # the prompt holds the last reply being edited

    def compose(self) -> ComposeResult:
        # `localft chat`'s settings: ChatSpec's defaults and the system prompt the run trained with.
        try:
            spec = run_chat_spec(self.run)
        except LocalftError:
            spec = ChatSpec()
        yield Header()
        with Horizontal(id="chat-settings"):
            yield Label("system", classes="chat-label")
            yield Input(spec.system or "", placeholder="system prompt (optional)", id="system",
                        tooltip=HELP["system"], compact=True)  # fmt: skip
            for name in SAMPLING:
                yield Label(SAMPLING[name], classes="chat-label")
                yield Input(
                    f"{getattr(spec, name):g}", id=name, classes="short", tooltip=HELP[name], compact=True
                )
            yield Checkbox(
                "vs base", False, id="compare", tooltip="Side by side with the base model", compact=True
            )
        with Horizontal(id="transcripts"):
            yield Transcript(id="tuned", classes="transcript")
            yield Transcript(id="base", classes="transcript")
        with Horizontal(id="draft-picks"):
            yield Button("Keep draft 1", id="pick-1", compact=True)
            yield Button("Keep draft 2", id="pick-2", compact=True)
        with Horizontal(id="feedback-row"):
            yield Static("", id="feedback-count")
            yield Button("Train on feedback", id="train-round", compact=True,
                         tooltip="A DPO round from this run's adapter on the pairs collected here")  # fmt: skip
            yield Button("grpo round", id="train-grpo", compact=True,
                         tooltip="A grpo round from this run's adapter: drafts of its training requests, "
                                 "scored by the task's rewards (no feedback needed)")  # fmt: skip
        yield Input(placeholder="Say something; Enter sends", id="prompt", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        tuned = self.query_one("#tuned", Transcript)
        tuned.border_title = self.model.name if self.model else "tuned"
        base = self.query_one("#base", Transcript)
        base.border_title = "base"
        base.display = False
        if self.model is None:
            tuned.query_one(Static).update(escape(self.missing))
        self.query_one("#draft-picks").display = False
        self.show_feedback_count()
        self.query_one("#prompt", Input).focus()

    def settings(self) -> ChatSpec:
        """The chat settings, validated by ChatSpec (a bad value is one line naming the field)."""
        from localft.config import build_spec

        values = {name: self.query_one(f"#{name}", Input).value.strip() for name in SAMPLING}
        values["system"] = self.query_one("#system", Input).value.strip() or None
        return build_spec(ChatSpec, values, where="chat settings")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "prompt":
            self.close_sessions()  # new settings take effect with freshly loaded sessions

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.query_one("#base", Transcript).display = event.value

    def action_toggle_base(self) -> None:
        switch = self.query_one("#compare", Checkbox)
        switch.value = not switch.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "prompt" or not event.value.strip():
            return
        if self.busy:
            self.notify("still answering; ctrl+g stops the reply", severity="warning")
            return
        text = event.value.strip()
        if self.editing or text.startswith("/"):
            event.input.value = ""
            self.feedback_command(f"/edit {text}" if self.editing else text)
            return
        self.send(text)

    def send(self, text: str, drafts: bool = False) -> None:
        if self.feedback is not None and self.feedback.drafts:
            self.notify("keep draft 1 or 2 first (or ctrl+r for a new chat)", severity="warning")
            return
        try:
            settings = self.settings()
        except LocalftError as exc:
            self.notify(str(exc), severity="error")
            return
        self.query_one("#prompt", Input).value = ""
        if drafts:
            self.start_drafts(text, settings)
            return
        sides = {"tuned": self.model}
        if self.query_one("#compare", Checkbox).value:
            try:
                sides["base"] = base_chat_model(self.run)
            except LocalftError as exc:
                self.notify(f"base: {exc}", severity="error")
        for side, model in sides.items():
            if model is None:
                what = self.missing if side == "tuned" else "no base GGUF for this model"
                self.notify(f"{side}: {what}", severity="error")
                continue
            self.query_one(f"#{side}", Transcript).add_user(text)
            self.busy.add(side)
            self.generate(side, model, text, settings)

    def session_for(self, side: str, model: ChatModel, settings: ChatSpec):
        session = self.sessions.get(side)
        if session is None:
            from localft.chat.feedback import ChatFeedback, FeedbackLog, feedback_path

            # llama.cpp's own output goes to the run's chat.log, never to the screen. The base
            # side is the embedded model's GGUF or the user's own, which localft did not write.
            log = self.run.path / "chat.log" if self.run else None
            session = model.open(settings, log_path=log, allow_foreign=side == "base")
            self.sessions[side] = session
            if side == "tuned":
                self.feedback = ChatFeedback(
                    session, FeedbackLog(feedback_path(self.run.path)) if self.run else None
                )
        return session

    @background("chat", exclusive=False)
    def generate(self, side: str, model: ChatModel, text: str, settings: ChatSpec) -> None:
        try:
            session = self.session_for(side, model, settings)
            for piece in session.stream(text):
                self.post_message(ChatText(side, piece))
        except LocalftError as exc:
            self.post_message(ChatDone(side, error=str(exc)))
            return
        self.post_message(ChatDone(side))

    def on_chat_text(self, message: ChatText) -> None:
        self.query_one(f"#{message.side}", Transcript).add_text(message.text)

    def on_chat_done(self, message: ChatDone) -> None:
        if message.side == "drafts":
            self.query_one("#draft-picks").display = True
            return
        self.busy.discard(message.side)
        note = f"\n[red]{escape(message.error)}[/red]" if message.error else ""
        self.query_one(f"#{message.side}", Transcript).end_reply(note)
        if message.error:
            self.notify(message.error, severity="error")

    def action_stop(self) -> None:
        for side in self.busy:
            session = self.sessions.get(side)
            if session is not None:
                session.stop()

    def action_reset(self) -> None:
        self.action_stop()
        if self.feedback is not None:
            self.feedback.drafts = []
        self.end_drafts()
        for session in self.sessions.values():
            session.reset()
        for transcript in self.query(Transcript):
            transcript.clear()

    def close_sessions(self) -> None:
        if self.busy:
            return
        for session in self.sessions.values():
            close = getattr(session, "close", None)
            if close:
                close()
        self.sessions.clear()
        self.feedback = None

    def action_back(self) -> None:
        if self.busy:  # the first escape stops the reply, the next one leaves
            self.action_stop()
            return
        self.close_sessions()
        self.app.pop_screen()
