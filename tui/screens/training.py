"""Training: follows a worker's events.jsonl (closing the dashboard never stops the worker)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Log, ProgressBar, Static
from textual.worker import get_current_worker

from localft.disk import fmt_bytes
from localft.errors import LocalftError
from localft.plan.planner import read_plan
from localft.run.folder import RunDir, run_writing
from localft.run.state import RunState, reward_line, throughput
from localft.tui.messages import RunEvents, TailEnded, WorkFailed
from localft.tui.widgets.loss_chart import LossChart
from localft.tui.widgets.stage_list import StageList
from localft.tui.workers import ReportsWorkerErrors, background

HELD_OUT_SHOWN = 3  # a round's latest held-out rewards on the stats panel


class TrainingScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
    ]

    def __init__(self, run_path: Path, resume: bool = False) -> None:
        super().__init__()
        self.run = RunDir(Path(run_path))
        self.view = RunState()
        self.resume_on_mount = resume
        self.batches = 0  # messages handled, to show coalescing in tests
        self.world_size = 1  # processes training the run (its plan's), read on mount

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="training"):
            yield Static(self.run.id, id="run-title", classes="title")
            with Horizontal(id="train-top"):
                yield LossChart(id="chart")
                with Vertical(id="train-side"):
                    yield Static("", id="status")
                    yield Static("", id="stats")
                    yield Static("memory", classes="label")
                    yield ProgressBar(id="memory", show_eta=False)
                    yield StageList(id="stages")
            with Horizontal(id="progress-row"):
                yield ProgressBar(id="progress", show_eta=False)
                yield Static("", id="eta")
                yield Button("Stop (s)", id="stop", variant="error", compact=True)
                yield Button("Resume (r)", id="resume", compact=True)
                yield Button("Export (e)", id="export", compact=True)
            yield Log(id="log", max_lines=200)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stages").display = False
        machine = self.app.machine or {}
        self.total_ram = machine.get("machine", machine).get("ram_bytes") or _total_ram()
        plan = read_plan(self.run.path) if self.run.path.is_dir() else None
        self.world_size = plan.world_size if plan else 1
        self.render_view()
        if self.resume_on_mount:
            self.action_resume()
        else:
            self.follow()

    # Tailing runs in a thread; each poll's events go to the UI as one message.
    @background("tail")
    def follow(self, start: int = 0) -> None:
        """Follow the run from byte `start` (0: replay it all into a fresh view) while any process
        writes it (a recipe writes export and eval stages after training)."""
        from localft.run.runner import EventFollower

        worker = get_current_worker()
        source, first = str(self.run.path), True
        events = EventFollower(self.run, start, whole_run=True).events(lambda: worker.is_cancelled)
        # One message per event; messages still queued merge (RunEvents.can_replace), so a burst
        # becomes one redraw and no event is lost.
        for event in events:
            self.post_message(RunEvents(source, [event], reset=start == 0 and first))
            first = False
        if first:
            self.post_message(RunEvents(source, [], reset=start == 0))
        if not worker.is_cancelled:
            self.post_message(TailEnded(source))

    def on_run_events(self, message: RunEvents) -> None:
        if message.source != str(self.run.path):
            return
        if message.reset:
            self.view = RunState()
        for event in message.events:
            self.view.apply(event)
        self.batches += 1
        self.render_view()

    def on_tail_ended(self, message: TailEnded) -> None:
        self.render_view()

    def status_text(self) -> str:
        v = self.view
        status = v.status
        if status in ("created", "running") and not run_writing(self.run):
            status = "not running" if status == "created" else "worker gone (resume with r)"
        elif status == "created":
            status = "preparing"
        text = f"[b]{status}[/b]"
        if v.error:
            text += f"\n[red]{v.error}[/red]"
        return text

    def best_line(self) -> str:
        """The best validation so far: a round's is its held-out reward, other runs' their loss."""
        v = self.view
        if v.best_reward is not None:
            return f"best held-out reward {v.best_reward:.3f} @ {v.best_step}"
        return f"best val {v.best_val_loss:.4f} @ {v.best_step}" if v.best_val_loss is not None else "val -"

    def render_view(self) -> None:
        v = self.view
        self.query_one("#run-title", Static).update(
            f"{self.run.id}  {v.model or ''} {f'· {v.backend} on {v.device}' if v.backend else ''}"
            + (f" · {self.world_size} processes" if self.world_size > 1 else "")
        )
        self.query_one("#status", Static).update(self.status_text())
        lines = [
            f"step {v.step}/{v.total or '?'}",
            f"loss {v.loss:.4f}" if v.loss is not None else "loss -",
            *([reward_line(v.reward, v.reward_std, v.kl)] if v.reward is not None else []),
            self.best_line(),
            # A round's latest held-out rewards: one that falls shows before early stopping ends it.
            *(
                [" ".join(["held-out", *(f"{r:.3f}" for r in v.held_out_rewards[-HELD_OUT_SHOWN:])])]
                if v.held_out_rewards
                else []
            ),
            f"lr {v.lr:.2e}" if v.lr is not None else "lr -",
            throughput(v.tok_per_s, self.world_size),
            f"peak mem {fmt_bytes(v.peak_mem)}" if v.peak_mem else "peak mem -",
        ]
        if v.last_checkpoint is not None:
            lines.append(f"checkpoint @ {v.last_checkpoint}")
        self.query_one("#stats", Static).update("\n".join(lines))
        self.query_one("#progress", ProgressBar).update(total=v.total or None, progress=v.step)
        self.query_one("#memory", ProgressBar).update(total=self.total_ram or None, progress=v.peak_mem or 0)
        self.query_one("#eta", Static).update(f"ETA {fmt_duration(v.eta_seconds())}")
        self.query_one(LossChart).set_points(
            list(zip(v.train_steps, v.train_losses, strict=True)),
            list(zip(v.val_steps, v.val_losses, strict=True)),
        )
        stages = self.query_one(StageList)
        stages.display = bool(v.stages)
        if v.stages:
            stages.show(v.stages)
        log = self.query_one(Log)
        log.clear()
        log.write_lines(list(v.logs)[-50:])
        running = v.status == "running" and run_writing(self.run)
        self.query_one("#stop", Button).disabled = not running
        self.query_one("#resume", Button).disabled = running or v.status == "completed"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"stop": self.action_stop, "resume": self.action_resume, "export": self.action_export}[
            event.button.id
        ]()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_stop(self) -> None:
        self.notify("stopping: the worker writes a checkpoint first")
        self.stop_worker()

    @background("control")
    def stop_worker(self) -> None:
        from localft.run.runner import stop_worker

        try:
            stop_worker(self.run)
        except LocalftError as exc:
            self.post_message(WorkFailed(str(exc)))

    def action_resume(self) -> None:
        self.resume_worker()

    @background("control")
    def resume_worker(self) -> None:
        """`localft runs resume`'s rules (runner.resume_run), then follow what the new worker adds."""
        from localft.events import events_with_offsets
        from localft.run.checkpoints import fallback_text
        from localft.run.runner import resume_run

        try:
            resumed = resume_run(self.run)  # refuses a completed run with a one-line reason
        except LocalftError as exc:
            self.post_message(WorkFailed(str(exc)))
            self.app.call_from_thread(self.follow, 0)  # show the run as it stands
            return
        for bad in resumed.skipped:
            self.app.call_from_thread(
                self.notify, f"skipped damaged checkpoint {bad}; {fallback_text(resumed.checkpoint)}",
                severity="warning",
            )  # fmt: skip
        # The run as it stood before the new worker; following from `start` adds the rest once.
        history = [e for e, end in events_with_offsets(self.run.events_path, 0) if end <= resumed.start]
        self.post_message(RunEvents(str(self.run.path), history, reset=True))
        self.app.call_from_thread(self.follow, resumed.start)

    def action_export(self) -> None:
        self.app.open_export(self.run.path)


def _total_ram() -> int:
    import psutil

    return psutil.virtual_memory().total


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
