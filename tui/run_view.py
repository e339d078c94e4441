"""What the Training and Export screens show, folded from the same events the CLI reads."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from localft.events import Checkpoint, Eval, Event, Finished, Log, RunStarted, Stage, Step
from localft.progress import describe


@dataclass
class StageState:
    name: str
    done: int = 0
    total: int = 0
    detail: str = ""


@dataclass
class RunView:
    backend: str = ""
    model: str = ""
    device: str = ""
    status: str = "waiting"  # waiting | running | completed | stopped | failed
    step: int = 0
    total: int = 0
    loss: float | None = None
    lr: float | None = None
    tokens: int = 0
    tok_per_s: float | None = None
    peak_mem: int | None = None
    train_steps: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    last_checkpoint: int | None = None
    best_step: int | None = None
    best_val_loss: float | None = None
    error: str | None = None
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    stages: dict[str, StageState] = field(default_factory=dict)
    # (step, time) where the current session's timing started: ETA ignores time before a resume.
    _pace_origin: tuple[int, float] | None = None
    _last_time: float | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.backend, self.model, self.device = event.backend, event.model, event.device
            self.total, self.status, self.error = event.total_steps, "running", None
            self.step = max(self.step, event.resumed_from)
            self._pace_origin = (event.resumed_from, event.time)
        elif isinstance(event, Step):
            if self.train_steps and event.step <= self.train_steps[-1]:
                # A resume replays steps after its checkpoint: keep the newest value per step.
                keep = sum(1 for s in self.train_steps if s < event.step)
                del self.train_steps[keep:], self.train_losses[keep:]
            self.train_steps.append(event.step)
            self.train_losses.append(event.loss)
            self.step, self.total, self.loss, self.lr = event.step, event.total, event.loss, event.lr
            self.tokens, self.tok_per_s = event.tokens, event.tok_per_s
            self.peak_mem = max(self.peak_mem or 0, event.peak_mem)
            self._last_time = event.time
            if self._pace_origin is None:
                self._pace_origin = (event.step - 1, event.time)
        elif isinstance(event, Eval):
            self.val_steps.append(event.step)
            self.val_losses.append(event.val_loss)
            if self.best_val_loss is None or event.val_loss < self.best_val_loss:
                self.best_val_loss, self.best_step = event.val_loss, event.step
        elif isinstance(event, Checkpoint):
            self.last_checkpoint = event.step
        elif isinstance(event, Stage):
            stage = self.stages.setdefault(event.name, StageState(event.name))
            stage.done, stage.total, stage.detail = event.done, event.total, event.detail
        elif isinstance(event, Finished):
            self.status, self.error = event.status, event.error
            self.step = max(self.step, event.step)
            if event.best_step is not None:
                self.best_step, self.best_val_loss = event.best_step, event.best_val_loss
        # The same lines the CLI prints; info logs too, since the screen has room for them.
        line = describe(event) or (event.message if isinstance(event, Log) else None)
        if line:
            self.logs.extend(line.splitlines())

    def eta_seconds(self) -> float | None:
        """Remaining time at the pace of this session's steps so far (None before two points)."""
        if self._pace_origin is None or self._last_time is None or not self.total:
            return None
        step0, t0 = self._pace_origin
        done, elapsed = self.step - step0, self._last_time - t0
        if done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - self.step) * elapsed / done)


def fold(events: list[Event], view: RunView | None = None) -> RunView:
    view = view or RunView()
    for event in events:
        view.apply(event)
    return view


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
