"""The Chat screen's feedback for the next training round (localft.chat.feedback, the commands
`localft chat` takes too): marks, two drafts side by side and a pick, edits, the blind test, and
the preference round on what was collected."""

from __future__ import annotations

from textual.widgets import Button, Checkbox, Input, Static

from localft.config import ChatSpec
from localft.errors import LocalftError
from localft.tui.messages import ChatDone, ChatText, RunLaunched, WorkFailed
from localft.tui.workers import background


class ChatFeedbackActions:
    """Mixed into ChatScreen: expects its `run`, `model`, `feedback`, `busy`, `editing`,
    `session_for`, `send` and the Transcript panes #tuned and #base."""

    def show_feedback_count(self) -> None:
        line = "feedback needs a run; open the chat from one"
        if self.run is not None:
            from localft.chat.feedback import feedback_counts

            line = f"{feedback_counts(self.run.path).describe()} · ^y good ^n bad ^t drafts ^o edit ^l blind"
        self.query_one("#feedback-count", Static).update(line)
        for button in self.query("#train-round, #train-grpo"):
            button.display = self.run is not None

    def start_drafts(self, text: str, settings: ChatSpec) -> None:
        """Two drafts of a reply side by side (left and right pane); neither is kept until picked."""
        if self.model is None:
            self.notify(f"tuned: {self.missing}", severity="error")
            return
        if self.query_one("#compare", Checkbox).value:
            self.notify("turn off 'vs base' to ask for two drafts", severity="warning")
            return
        left, right = self.query_one("#tuned"), self.query_one("#base")
        right.clear()
        right.border_title, right.display = "draft 2", True
        left.add_user(text)
        right.add_user(text)
        self.busy.update(("tuned", "base"))
        self.generate_drafts(text, settings)

    @background("chat", exclusive=False)
    def generate_drafts(self, text: str, settings: ChatSpec) -> None:
        side = "tuned"
        try:
            self.session_for("tuned", self.model, settings)
            for index, side in enumerate(("tuned", "base")):
                for piece in self.feedback.stream_draft(text, index):
                    self.post_message(ChatText(side, piece))
                self.post_message(ChatDone(side))
        except LocalftError as exc:
            self.post_message(ChatDone(side, error=str(exc)))
            if side == "tuned":
                self.post_message(ChatDone("base"))
            return
        self.post_message(ChatDone("drafts"))

    def feedback_command(self, line: str) -> None:
        from localft.chat.feedback import FeedbackError

        cmd, _, arg = line.partition(" ")
        if cmd == "/two":
            if arg.strip():
                self.send(arg.strip(), drafts=True)
            else:
                self.notify("write the request: /two TEXT (or type it and press ctrl+t)", severity="warning")
            return
        try:
            if self.feedback is None:
                raise FeedbackError("no reply to judge yet; say something first")
            said = self.feedback.command(line)
        except FeedbackError as exc:
            self.notify(str(exc), severity="warning")
            return
        finally:
            self.editing = False
        if said is None:
            self.notify(f"unknown command {cmd}; feedback commands: /good, /bad, /two TEXT, /pick 1|2, /edit TEXT",
                        severity="warning")  # fmt: skip
            return
        if cmd in ("/edit", "/pick"):
            self.query_one("#tuned").replace_last_reply(self.feedback.session.history()[-1]["content"])
        if cmd == "/pick":
            self.end_drafts()
        self.notify(said)
        self.show_feedback_count()

    def end_drafts(self) -> None:
        right = self.query_one("#base")
        right.clear()
        right.border_title = "base"
        right.display = self.query_one("#compare", Checkbox).value
        self.query_one("#draft-picks").display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("pick-1", "pick-2"):
            self.feedback_command(f"/pick {event.button.id[-1]}")
        elif event.button.id == "train-round" and self.run is not None:
            from localft.chat.feedback import feedback_counts

            counts = feedback_counts(self.run.path)
            if not (counts.pairs or counts.marks):
                self.notify("no feedback yet: mark, pick or edit replies first", severity="warning")
                return
            event.button.disabled = True
            self.notify("starting a preference round on this run's feedback…")
            self.start_round("dpo" if counts.pairs else "kto")
        elif event.button.id == "train-grpo" and self.run is not None:
            event.button.disabled = True
            self.notify("starting a reinforcement round (grpo) on this run's training requests…")
            self.start_round("grpo")

    @background("round")
    def start_round(self, method: str) -> None:
        """A preference or reinforcement round from this run (localft.train.preference_round, as
        `localft train --method dpo|grpo --from RUN` does); the Training screen follows it."""
        from localft.run.folder import discard_unstarted
        from localft.run.runner import start_worker
        from localft.train.preference_round import prepare_round

        try:
            run = prepare_round(self.run, method)
            try:
                start_worker(run)
            except BaseException:
                discard_unstarted(run)
                raise
        except LocalftError as exc:
            self.post_message(WorkFailed(str(exc)))
            return
        self.post_message(RunLaunched(run.path))

    def enable_round_buttons(self) -> None:
        for button in self.query("#train-round, #train-grpo"):
            button.disabled = False

    def on_work_failed(self, message: WorkFailed) -> None:
        self.enable_round_buttons()  # the app shows the message

    def on_run_launched(self, message: RunLaunched) -> None:
        self.enable_round_buttons()
        self.close_sessions()
        self.app.open_training(message.run_path)

    def action_rate(self, good: bool) -> None:
        if not self.busy:
            self.feedback_command("/good" if good else "/bad")

    def action_two_drafts(self) -> None:
        prompt = self.query_one("#prompt", Input)
        if self.busy or not prompt.value.strip():
            self.notify("type the request first, then ctrl+t for two drafts", severity="warning")
            return
        self.send(prompt.value.strip(), drafts=True)

    def action_blind(self) -> None:
        if self.run is None:
            self.notify(
                "the blind test needs a run's held-out posts; open the chat from a run", severity="warning"
            )
            return
        from localft.tui.screens.blind import BlindScreen

        self.app.push_screen(BlindScreen(self.run.path))

    def action_edit(self) -> None:
        history = self.feedback.session.history() if self.feedback else []
        if self.busy or not history or history[-1]["role"] != "assistant":
            self.notify("no reply to edit yet", severity="warning")
            return
        prompt = self.query_one("#prompt", Input)
        prompt.value, self.editing = history[-1]["content"], True
        prompt.focus()
        self.notify("edit the reply, then Enter keeps your version (the original becomes the rejected one)")
