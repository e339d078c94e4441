"""The closed set of run events, one JSON object per line in events.jsonl.

The training loop emits them; the CLI, the dashboard and the tests all read the same stream.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class RunStarted:
    kind: ClassVar[str] = "run_started"
    run_id: str
    backend: str
    model: str
    device: str
    total_steps: int
    resumed_from: int = 0
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Step:
    kind: ClassVar[str] = "step"
    step: int
    total: int
    loss: float
    lr: float
    tokens: int  # real (non-padding) tokens trained so far
    tok_per_s: float
    peak_mem: int  # bytes: CUDA max allocated, MLX peak, or process RSS on CPU
    time: float = field(default_factory=_now)
    # A reinforcement step's drafts: their mean reward and its spread (absent in other runs' events).
    reward: float | None = None
    reward_std: float | None = None
    kl: float | None = None  # with a KL term (beta): the drafts' mean per-token KL to the start adapter


@dataclass(frozen=True)
class Eval:
    kind: ClassVar[str] = "eval"
    step: int
    val_loss: float
    time: float = field(default_factory=_now)
    # A reinforcement round's held-out reward: one greedy reply per validation request, scored by
    # the round's rewards (the measure its best adapter and early stopping follow).
    reward: float | None = None
    reward_std: float | None = None

    @property
    def measure(self) -> float:
        """What the best adapter and early stopping follow, lower is better: the validation loss,
        or in a reinforcement round minus its held-out reward. The loop, the worker's summary and
        the run's state all compare this one value."""
        return self.val_loss if self.reward is None else -self.reward


@dataclass(frozen=True)
class Checkpoint:
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Log:
    kind: ClassVar[str] = "log"
    message: str
    level: Literal["info", "warning", "error"] = "info"
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Stage:
    kind: ClassVar[str] = "stage"
    name: str  # e.g. "import", "train", "merge", "convert", "quantize", "verify", "eval"
    done: int
    total: int
    detail: str = ""
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Finished:
    kind: ClassVar[str] = "finished"
    status: Literal["completed", "stopped", "failed"]
    step: int = 0
    best_step: int | None = None
    best_val_loss: float | None = None
    error: str | None = None
    time: float = field(default_factory=_now)
    best_reward: float | None = None  # a reinforcement round: the held-out reward at best_step


Event = RunStarted | Step | Eval | Checkpoint | Log | Stage | Finished
Emit = Callable[[Event], None]
EVENT_TYPES: dict[str, type] = {
    cls.kind: cls for cls in (RunStarted, Step, Eval, Checkpoint, Log, Stage, Finished)
}


def to_json(event: Event) -> str:
    return json.dumps({"kind": event.kind, **dataclasses.asdict(event)}, ensure_ascii=False)


def from_json(line: str) -> Event:
    data = json.loads(line)
    cls = EVENT_TYPES[data.pop("kind")]
    return cls(**data)


class EventSink:
    """Appends events to a file, one flushed line each, so a reader never waits on a buffer."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def __call__(self, event: Event) -> None:
        self._file.write(to_json(event) + "\n")
        self._file.flush()
        if isinstance(event, (Checkpoint, Finished)):
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_events(path: Path) -> list[Event]:
    """Every complete event in the file; a torn last line (a writer killed mid-line) is skipped."""
    return [event for event, _ in events_with_offsets(path, 0)]


def events_with_offsets(path: Path, offset: int) -> list[tuple[Event, int]]:
    """Each complete event from byte `offset` on, with the offset just past its line: how every
    follower reads, never the whole file again. A line still being written is left for the next
    read; a line torn by a kill and later overwritten is skipped."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    found, pos = [], 0
    while (end := data.find(b"\n", pos)) >= 0:
        line, pos = data[pos:end].strip(), end + 1
        if not line:
            continue
        try:
            found.append((from_json(line.decode("utf-8")), offset + pos))
        except (ValueError, KeyError, TypeError):
            continue
    return found
