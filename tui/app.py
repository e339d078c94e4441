"""The `localft` dashboard: Home, New run, Training, Export and Chat over the CLI's own functions."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from localft.errors import LocalftError
from localft.tui.messages import MachineReport, WorkFailed
from localft.tui.workers import ReportsWorkerErrors, background


class LocalftApp(ReportsWorkerErrors, App):
    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "localft"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f2", "toggle_theme", "Light/dark"),
    ]

    def __init__(self, machine: dict[str, Any] | None = None, attach: bool = True) -> None:
        """`machine` fixes the machine report (snapshots); `attach` opens a running run on start."""
        super().__init__()
        self.machine = machine
        self.attach = attach
        self.worker_failures: list[str] = []  # every failed background job, for tests and the log

    def on_mount(self) -> None:
        from localft.tui.screens.home import HomeScreen

        self.theme = "textual-dark"
        self.push_screen(HomeScreen())

    def machine_report(self) -> dict[str, Any]:
        """`localft doctor`'s report, computed once per session (thread-safe enough: same result)."""
        if self.machine is None:
            from localft.cli.doctor import doctor_report

            self.machine = doctor_report()
        return self.machine

    @background("machine", exclusive=False)
    def load_machine(self, screen: Screen) -> None:
        """Compute the doctor report off the UI thread and hand it to `screen` as a MachineReport."""
        try:
            screen.post_message(MachineReport(self.machine_report()))
        except LocalftError as exc:
            screen.post_message(WorkFailed(str(exc)))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(message.text, severity="error", timeout=8)

    def open_training(self, run_path: Path) -> None:
        from localft.tui.screens.training import TrainingScreen

        self.push_screen(TrainingScreen(run_path))

    def open_export(self, run_path: Path) -> None:
        from localft.tui.screens.export import ExportScreen

        self.push_screen(ExportScreen(run_path))

    def open_chat(self, gguf: Path | None = None, run_path: Path | None = None) -> None:
        from localft.tui.screens.chat import ChatScreen

        self.push_screen(ChatScreen(gguf=gguf, run_path=run_path))

    def open_new_run(self) -> None:
        from localft.tui.screens.new_run import NewRunScreen

        self.push_screen(NewRunScreen())


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Point fd 2 at `log_path` while the dashboard runs, and draw the screen on a copy of the
    terminal instead: C libraries (llama.cpp, bitsandbytes) then write to the log, never the screen."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    terminal = os.dup(2)
    saved_stderr, saved_dunder = sys.stderr, sys.__stderr__
    log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed below
    term_file = os.fdopen(terminal, "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(log.fileno(), 2)
    # Textual's driver writes to sys.__stderr__; give it the terminal copy.
    sys.__stderr__ = term_file
    sys.stderr = log
    try:
        yield
    finally:
        term_file.flush()
        os.dup2(terminal, 2)
        sys.__stderr__, sys.stderr = saved_dunder, saved_stderr
        term_file.close()
        log.close()


def run_dashboard() -> None:
    """Open the dashboard; the CLI calls this when `localft` gets no subcommand."""
    from localft.paths import localft_home

    with native_output_to(localft_home() / "logs" / "dashboard.log"):
        import faulthandler
        import signal

        # `kill -USR1 <pid>` writes every thread's stack to the log: how a hang gets diagnosed
        # (POSIX only: Windows has neither SIGUSR1 nor faulthandler.register).
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        LocalftApp().run()
