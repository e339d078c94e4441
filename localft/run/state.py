"""A run's state folded from its events.jsonl: the one reading of the stream that the CLI
(`runs`, progress lines), the dashboard and the tests share; and the pace earlier runs measured."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from localft.events import Checkpoint, Eval, Event, Finished, Log, RunStarted, Stage, Step


def throughput(tok_per_s: float | None, world_size: int = 1) -> str:
    """Tokens a second in all, and each process's share when several train together."""
    if tok_per_s is None:
        return "tok/s -"
    if world_size > 1:
        return f"{tok_per_s:.0f} tok/s ({tok_per_s / world_size:.0f} per rank x {world_size})"
    return f"{tok_per_s:.0f} tok/s"


def reward_line(reward: float, spread: float | None, kl: float | None = None) -> str:
    """A reinforcement step's mean reward over its drafts and their spread (standard deviation),
    and the KL to the start adapter where the round has a KL term."""
    line = f"reward {reward:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")
    return line + (f"  kl {kl:.4f}" if kl is not None else "")


def describe(event: Event) -> str | None:
    """One line for the events worth a line of their own (steps go to a progress bar)."""
    if isinstance(event, RunStarted):
        resumed = f", resumed from step {event.resumed_from}" if event.resumed_from else ""
        return f"training {event.model} on {event.backend}/{event.device}, {event.total_steps} steps{resumed}"
    if isinstance(event, Eval):
        held_out = "" if event.reward is None else f", held-out {reward_line(event.reward, event.reward_std)}"
        return f"step {event.step}: validation loss {event.val_loss:.4f}{held_out}"
    if isinstance(event, Checkpoint):
        return f"step {event.step}: checkpoint saved"
    if isinstance(event, Log) and event.level != "info":
        return f"{event.level}: {event.message}"
    if isinstance(event, Stage) and event.done == event.total:
        return f"{event.name}: done" + (f" ({event.detail})" if event.detail not in ("", "done") else "")
    if isinstance(event, Finished):
        text = f"run {event.status} at step {event.step}"
        if event.best_reward is not None:
            text += f"; best held-out reward {event.best_reward:.3f} at step {event.best_step}"
        elif event.best_val_loss is not None:
            text += f"; best validation loss {event.best_val_loss:.4f} at step {event.best_step}"
        return text + (f"\n{event.error}" if event.error else "")
    return None


def stage_line(event: Stage) -> str:
    """A stage in progress: its name, what it works on, and a count ("convert Q8_0: 12/272")."""
    text = f"{event.name} {event.detail}" if event.detail else event.name
    return f"{text}: {event.done}/{event.total}" if event.total > 1 else text


@dataclass
class StageState:
    name: str
    done: int = 0
    total: int = 0
    detail: str = ""
    started: float | None = None  # time of this pass's first event (a stage may run several passes)
    _origin: tuple[int, float] | None = None
    _last_time: float | None = None

    def apply(self, event: Stage) -> None:
        if self._origin is None or event.done < self.done or event.total != self.total:
            self._origin, self.started = (event.done, event.time), event.time  # a new pass
        self.done, self.total, self.detail, self._last_time = (
            event.done,
            event.total,
            event.detail,
            event.time,
        )

    def eta_seconds(self) -> float | None:
        """Remaining time at this pass's pace so far (None before it has moved)."""
        if self._origin is None or self._last_time is None or not self.total:
            return None
        done0, t0 = self._origin
        done, elapsed = self.done - done0, self._last_time - t0
        if done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - self.done) * elapsed / done)


@dataclass
class RunState:
    backend: str = ""
    model: str = ""
    device: str = ""
    status: str = "created"  # created | running | completed | stopped | failed
    step: int = 0
    total: int = 0
    loss: float | None = None
    lr: float | None = None
    reward: float | None = None  # a reinforcement round's last step: mean reward of its drafts
    reward_std: float | None = None
    kl: float | None = None
    held_out_rewards: list[float] = field(default_factory=list)  # a round's, one per validation
    tokens: int = 0
    tok_per_s: float | None = None
    peak_mem: int | None = None
    started: float | None = None  # time of the first RunStarted
    train_steps: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    last_checkpoint: int | None = None
    best: Eval | None = None  # the best validation so far (by its measure), or Finished's
    error: str | None = None
    training_open: bool = False  # a RunStarted without its Finished yet
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    stages: dict[str, StageState] = field(default_factory=dict)
    # (step, tokens, time) where the current session's timing started: pace and ETA ignore the
    # time before a resume.
    _origin: tuple[int, int, float] | None = None
    _last_time: float | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.backend, self.model, self.device = event.backend, event.model, event.device
            self.total, self.status, self.error = event.total_steps, "running", None
            self.started = self.started or event.time
            self.step = max(self.step, event.resumed_from)
            self.training_open, self._origin, self._last_time = True, None, None
        elif isinstance(event, Step):
            if self.train_steps and event.step <= self.train_steps[-1]:
                # A resume replays steps after its checkpoint: keep the newest value per step.
                keep = sum(1 for s in self.train_steps if s < event.step)
                del self.train_steps[keep:], self.train_losses[keep:]
            self.train_steps.append(event.step)
            self.train_losses.append(event.loss)
            self.step, self.total, self.loss, self.lr = event.step, event.total, event.loss, event.lr
            self.reward, self.reward_std, self.kl = event.reward, event.reward_std, event.kl
            self.tokens, self.tok_per_s = event.tokens, event.tok_per_s
            self.peak_mem = max(self.peak_mem or 0, event.peak_mem)
            if self._origin is None:
                self._origin = (event.step, event.tokens, event.time)
            self._last_time = event.time
        elif isinstance(event, Eval):
            self.val_steps.append(event.step)
            self.val_losses.append(event.val_loss)
            if event.reward is not None:
                self.held_out_rewards.append(event.reward)
            if self.best is None or event.measure < self.best.measure:
                self.best = event
        elif isinstance(event, Checkpoint):
            self.last_checkpoint = event.step
        elif isinstance(event, Stage):
            self.stages.setdefault(event.name, StageState(event.name)).apply(event)
        elif isinstance(event, Finished):
            self.status, self.error, self.training_open = event.status, event.error, False
            self.step = max(self.step, event.step)
            if event.best_step is not None:
                self.best = Eval(event.best_step, event.best_val_loss, reward=event.best_reward)
        # The same lines the CLI prints; info logs too, since the screen has room for them.
        line = describe(event) or (event.message if isinstance(event, Log) else None)
        if line:
            self.logs.extend(line.splitlines())

    @property
    def best_step(self) -> int | None:
        return None if self.best is None else self.best.step

    @property
    def best_val_loss(self) -> float | None:
        return None if self.best is None else self.best.val_loss

    @property
    def best_reward(self) -> float | None:
        return None if self.best is None else self.best.reward

    def pace(self) -> float | None:
        """Trained tokens per second of wall time over this session's steps (evaluations and
        checkpoints included: what a time budget spends); the last step's figure before two steps."""
        if self._origin is None or self._last_time is None:
            return None
        _, tokens0, t0 = self._origin
        if self._last_time > t0 and self.tokens > tokens0:
            return (self.tokens - tokens0) / (self._last_time - t0)
        return self.tok_per_s or None

    def eta_seconds(self) -> float | None:
        """Remaining time at the pace of this session's steps so far (None before two points)."""
        if self._origin is None or self._last_time is None or not self.total:
            return None
        step0, _, t0 = self._origin
        done, elapsed = self.step - step0, self._last_time - t0
        if done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - self.step) * elapsed / done)


def fold(events: list[Event], state: RunState | None = None) -> RunState:
    state = state or RunState()
    for event in events:
        state.apply(event)
    return state
