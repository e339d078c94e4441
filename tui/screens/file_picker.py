"""Pick an export archive, folder or dataset file from a directory tree."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Footer, Static


class FilePicker(ModalScreen[Path | None]):
    """Enter on a file picks it; `u` picks the highlighted folder (an unpacked export)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("u", "pick_folder", "Use folder"),
        Binding("backspace", "go_up", "Parent folder"),
    ]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start if start.is_dir() else Path.home()

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(f"Choose your data ({self.start})", id="picker-title", classes="title")
            yield DirectoryTree(self.start, id="tree")
        yield Footer()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    def action_pick_folder(self) -> None:
        node = self.query_one(DirectoryTree).cursor_node
        if node is not None and node.data is not None and node.data.path.is_dir():
            self.dismiss(node.data.path)

    def action_go_up(self) -> None:
        tree = self.query_one(DirectoryTree)
        parent = Path(tree.path).parent
        tree.path = parent
        self.query_one("#picker-title", Static).update(f"Choose your data ({parent})")

    def action_cancel(self) -> None:
        self.dismiss(None)
