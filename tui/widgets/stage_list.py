"""Export and recipe stages (merge, convert, quantize, verify ...) with their progress."""

from __future__ import annotations

from textual.widgets import DataTable

from localft.run.state import StageState


class StageList(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "none"
        self.add_columns("stage", "progress", "detail")

    def show(self, stages: dict[str, StageState]) -> None:
        self.clear()
        for s in stages.values():
            if s.total and s.done >= s.total:
                mark = "done"
            elif s.total:
                mark = f"{s.done}/{s.total}"
            else:
                mark = "..."
            self.add_row(s.name, mark, s.detail, key=s.name)
