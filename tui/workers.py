"""Background work for the dashboard: every thread worker goes through `background`, so a failure
shows as a one-line notification (and a traceback in logs/dashboard.log), never a crashed dashboard."""

from __future__ import annotations

import sys
import traceback

from textual import work
from textual.worker import Worker, WorkerState

from localft.errors import LocalftError
from localft.tui.messages import WorkFailed


def background(group: str, exclusive: bool = True):
    """`@work` on a thread; `exclusive` cancels the group's previous job (its result is ignored)."""
    return work(thread=True, exclusive=exclusive, group=group, exit_on_error=False)


def failure_text(error: BaseException) -> str:
    if isinstance(error, LocalftError):
        return str(error)
    # Not a user error: keep the traceback for the bug report, show one line.
    traceback.print_exception(error, file=sys.stderr)
    return f"{type(error).__name__}: {error} (a bug in localft; details in logs/dashboard.log)"


class ReportsWorkerErrors:
    """Mixed into every screen (and the app): a worker that raised becomes a WorkFailed message."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            text = failure_text(event.worker.error)
            self.app.worker_failures.append(text)
            self.app.post_message(WorkFailed(text))
