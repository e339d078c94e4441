"""Home: this machine, recent runs with their status, and the quick actions."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Static

from localft.errors import LocalftError
from localft.tui.messages import MachineReport, RunsListed, WorkFailed
from localft.tui.widgets.machine_panel import MachinePanel
from localft.tui.workers import ReportsWorkerErrors, background


def fmt_loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


class HomeScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("n", "new_run", "New run"),
        Binding("o", "open_run", "Watch"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("c", "chat", "Chat"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="home"):
            with Vertical(id="machine-box"):
                yield Static("This machine", classes="title")
                yield MachinePanel("looking at this machine...", id="machine")
                with Vertical(id="quick"):
                    yield Button("New run (n)", id="new-run", variant="primary", compact=True)
                    yield Button("Watch (o)", id="open-run", compact=True)
                    yield Button("Resume (r)", id="resume", compact=True)
                    yield Button("Export (e)", id="export", compact=True)
                    yield Button("Chat (c)", id="chat", compact=True)
            with Vertical(id="runs-box"):
                yield Static("Runs", classes="title")
                yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
                yield Static("", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("run", "model", "status", "step", "loss", "best val")
        table.focus()
        self.runs: list = []
        self.app.load_machine(self)
        self.refresh_runs(first=True)
        self.set_interval(2.0, self.refresh_runs)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    @background("runs")
    def refresh_runs(self, first: bool = False) -> None:
        from localft.run.folder import list_runs

        try:
            runs = list_runs()
        except LocalftError as exc:
            self.post_message(WorkFailed(str(exc)))
            return
        runs.sort(key=lambda r: r.id, reverse=True)
        self.post_message(RunsListed(runs))
        if first and self.app.attach:
            running = [r for r in runs if r.status == "running"]
            if running:  # reopening the dashboard re-attaches to the job still training
                self.app.call_from_thread(self.app.open_training, running[0].path)

    def on_machine_report(self, message: MachineReport) -> None:
        self.query_one(MachinePanel).show(message.report)

    def on_runs_listed(self, message: RunsListed) -> None:
        table = self.query_one("#runs", DataTable)
        selected = self.selected_run()
        self.runs = message.runs
        table.clear()
        for r in message.runs:
            step = f"{r.step}/{r.total}" if r.total else str(r.step)
            table.add_row(
                r.id, r.model, r.status, step, fmt_loss(r.last_loss), fmt_loss(r.best_val_loss), key=r.id
            )
        if selected is not None and selected.id in {r.id for r in message.runs}:
            table.move_cursor(row=table.get_row_index(selected.id))
        empty = "" if message.runs else "No runs yet. Press n to start one."
        self.query_one("#runs-empty", Static).update(empty)

    def selected_run(self):
        runs = getattr(self, "runs", [])
        if not runs:
            return None
        row = self.query_one("#runs", DataTable).cursor_row
        return runs[row] if 0 <= row < len(runs) else None

    def _need_run(self):
        run = self.selected_run()
        if run is None:
            self.notify("no run selected; press n to start one", severity="warning")
        return run

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"new-run": self.action_new_run, "open-run": self.action_open_run,
                   "resume": self.action_resume, "export": self.action_export, "chat": self.action_chat}  # fmt: skip
        actions[event.button.id]()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_new_run(self) -> None:
        self.app.open_new_run()

    def action_open_run(self) -> None:
        if run := self._need_run():
            self.app.open_training(run.path)

    def action_resume(self) -> None:
        if run := self._need_run():
            from localft.tui.screens.training import TrainingScreen

            self.app.push_screen(TrainingScreen(run.path, resume=True))

    def action_export(self) -> None:
        if run := self._need_run():
            self.app.open_export(run.path)

    def action_chat(self) -> None:
        run = self.selected_run()
        self.app.open_chat(run_path=Path(run.path) if run else None)

    def action_refresh(self) -> None:
        self.refresh_runs()
