"""What every importer yields: posts (or prepared rows) plus a tally of what it dropped and why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Post:
    text: str  # the writing itself; for a prepared chat row, its last assistant reply
    source_id: str = ""
    date: str = ""  # ISO 8601 where the export gives one
    kind: str = "post"  # post | thread | article | chat | completion | text
    parent_id: str = ""  # the post this one replies to, when it is part of the author's own thread
    title: str = ""
    meta: dict = field(default_factory=dict)  # platform extras: content warning, visibility, file
    messages: list[dict] | None = None  # prepared chat rows keep their conversation
    platform: str = ""  # the importer that read it (linkedin, x, ...); set by import_posts
    origin: int = 0  # which input of a several-source import it came from

    @property
    def prepared(self) -> bool:
        return self.kind in ("chat", "completion", "text")


@dataclass
class Tally:
    """Counts for the data report: records read, and posts dropped per reason, in order."""

    read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # e.g. emails replaced, threads joined

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def change(self, what: str, n: int = 1) -> None:
        if n:
            self.changed[what] = self.changed.get(what, 0) + n
