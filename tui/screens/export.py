"""Export: merge -> convert -> quantize -> verify with a stage list, then sizes, parity and chat."""

from __future__ import annotations

import io
from pathlib import Path
from typing import get_args

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Label, SelectionList, Static

from localft.config import ExportSpec, QuantName, field_help
from localft.disk import fmt_bytes
from localft.errors import LocalftError
from localft.run.folder import RunDir
from localft.run.state import RunState
from localft.tui.messages import ExportFinished, RunEvents, WorkFailed
from localft.tui.widgets.stage_list import StageList
from localft.tui.workers import ReportsWorkerErrors, background

EXPORT_HELP = field_help(ExportSpec)


def report_text(report, width: int = 110) -> Text:
    """The export report exactly as `localft export` prints it."""
    from rich.console import Console

    from localft.cli.export import print_report

    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=width, force_terminal=True, color_system="truecolor"))
    return Text.from_ansi(buffer.getvalue())


def gguf_files(run: RunDir) -> list[Path]:
    return sorted(run.gguf_dir.glob("*.gguf")) if run.gguf_dir.is_dir() else []


# ExportSpec switches shown as checkboxes: field name, label.
EXPORT_OPTIONS = (
    ("verify", "verify against HF"),
    ("ollama", "Ollama Modelfile"),
    ("lmstudio", "LM Studio folder"),
)


class ExportScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "export", "Export"),
        Binding("c", "chat", "Chat"),
        Binding("m", "modelfile", "Modelfile"),
        Binding("l", "lmstudio", "LM Studio"),
    ]

    def __init__(self, run_path: Path) -> None:
        super().__init__()
        self.run = RunDir(Path(run_path))
        self.view = RunState()
        self.exporting = False

    def compose(self) -> ComposeResult:
        defaults = ExportSpec()
        yield Header()
        with Horizontal(id="export"):
            with Vertical(id="export-options"):
                yield Static(f"Export {self.run.id}", classes="title")
                yield Label("GGUF types", classes="label")
                quants = [(q, q, q in defaults.quants) for q in get_args(QuantName)]
                yield SelectionList[str](*quants, id="quants", compact=True)
                for field, label in EXPORT_OPTIONS:
                    yield Checkbox(
                        label, getattr(defaults, field), id=field, tooltip=EXPORT_HELP[field], compact=True
                    )
            with Vertical(id="export-status"):
                yield Static("Stages", classes="title")
                yield StageList(id="stages")
                with ScrollableContainer(id="export-scroll"):
                    yield Static("", id="export-result")
                with Horizontal(id="export-buttons"):
                    yield Button("Export (x)", id="export-go", variant="primary", compact=True)
                    yield Button("Modelfile (m)", id="modelfile", compact=True)
                    yield Button("LM Studio (l)", id="lmstudio-go", compact=True)
                    yield Button("Chat (c)", id="chat", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.show_files()

    def export_spec(self) -> ExportSpec:
        return ExportSpec(
            quants=list(self.query_one("#quants", SelectionList).selected),
            verify=self.query_one("#verify", Checkbox).value,
            ollama=self.query_one("#ollama", Checkbox).value,
            lmstudio=self.query_one("#lmstudio", Checkbox).value,
        )

    def show_files(self, report=None, error: str = "") -> None:
        """The export report when one was just made, else the GGUF files already in the run."""
        files = gguf_files(self.run)
        if report is not None:
            result = report_text(report)
        else:
            lines = [f"{p.name}  {fmt_bytes(p.stat().st_size)}" for p in files] or ["no GGUF yet"]
            if (self.run.gguf_dir / "Modelfile").is_file():
                lines.append(f"Modelfile: {self.run.gguf_dir / 'Modelfile'}")
            result = Text("\n".join(lines))
        if error:
            result.append("\n\n" + error, style="red")
        self.query_one("#export-result", Static).update(result)
        self.query_one("#chat", Button).disabled = not files

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"export-go": self.action_export, "chat": self.action_chat,
                   "modelfile": self.action_modelfile, "lmstudio-go": self.action_lmstudio}  # fmt: skip
        actions[event.button.id]()

    def action_modelfile(self) -> None:
        # The pipeline skips files already complete, so this only writes the Modelfile.
        self.action_export(ollama=True, verify=False)

    def action_lmstudio(self) -> None:
        self.action_export(lmstudio=True, verify=False)

    def action_export(self, **overrides) -> None:
        if self.exporting:
            return
        if not self.query_one("#quants", SelectionList).selected:
            self.notify("choose at least one GGUF type", severity="error")
            return
        spec = self.export_spec().model_copy(update=overrides)
        self.exporting = True
        for button in self.query("#export-buttons Button"):
            button.disabled = True
        self.view = RunState()
        self.run_export(spec)

    @background("export")
    def run_export(self, spec: ExportSpec) -> None:
        from localft.run.export import export_run

        source = f"export:{self.run.path}"
        try:
            report = export_run(self.run, spec, emit=lambda e: self.post_message(RunEvents(source, [e])))
        except LocalftError as exc:
            self.post_message(ExportFinished(error=str(exc)))
            return
        self.post_message(ExportFinished(report=report))

    def on_run_events(self, message: RunEvents) -> None:
        for event in message.events:
            self.view.apply(event)
        self.query_one(StageList).show(self.view.stages)

    def on_export_finished(self, message: ExportFinished) -> None:
        self.exporting = False
        for button in self.query("#export-buttons Button"):
            button.disabled = False
        if message.error:
            self.post_message(WorkFailed(message.error))
            self.show_files(error=message.error)
            return
        self.notify(
            "export finished" if message.report.ok else "export finished: a check failed, see the table"
        )
        self.show_files(report=message.report)

    def action_chat(self) -> None:
        files = gguf_files(self.run)
        if not files:
            self.notify("export a GGUF first (x)", severity="warning")
            return
        self.app.open_chat(run_path=self.run.path)

    def action_back(self) -> None:
        self.app.pop_screen()
