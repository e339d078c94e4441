"""Run directories: layout and listing runs with their status (atomic writes: localft.atomic).

runs/<id>/spec.json data/ events.jsonl train.log checkpoints/step-000200/ adapter/ merged/ gguf/ eval/
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_json, atomic_write_text
from localft.config import TrainSpec, build_spec
from localft.errors import RunError
from localft.events import Finished, RunStarted, Step, read_events
from localft.paths import runs_dir
from localft.run.processes import process_alive, process_started
from localft.run.state import fold

RECIPE_FILE = "recipe.json"  # what a recipe run records: recipe, sources, --model, task


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    spec_path = property(lambda self: self.path / "spec.json")
    data_dir = property(lambda self: self.path / "data")
    events_path = property(lambda self: self.path / "events.jsonl")
    log_path = property(lambda self: self.path / "train.log")
    pid_path = property(lambda self: self.path / "worker.pid")
    stop_path = property(lambda self: self.path / "stop-requested")  # the worker polls it between steps
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    adapter_dir = property(lambda self: self.path / "adapter")
    best_adapter_dir = property(lambda self: self.path / "adapter-best")
    merged_dir = property(lambda self: self.path / "merged")
    gguf_dir = property(lambda self: self.path / "gguf")
    eval_dir = property(lambda self: self.path / "eval")
    stages_path = property(lambda self: self.path / "stages.json")
    recipe_pid_path = property(lambda self: self.path / "recipe.pid")  # a recipe process driving the run

    def split_path(self, split: str) -> Path:
        return self.data_dir / f"{split}.jsonl"

    def read_spec(self) -> TrainSpec:
        try:
            data = json.loads(self.spec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run (no spec.json)") from None
        except ValueError:
            raise RunError(f"{self.spec_path} is damaged (not JSON); this run cannot be used") from None
        if not isinstance(data, dict):
            raise RunError(f"{self.spec_path} is damaged (not a JSON object); this run cannot be used")
        return build_spec(TrainSpec, data, where=str(self.spec_path))

    def write_spec(self, spec: TrainSpec) -> None:
        atomic_write_json(self.spec_path, spec.model_dump(mode="json"))

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:06d}"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first; a folder without state.json is never used."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = [
            p
            for p in self.checkpoints_dir.iterdir()
            if p.is_dir() and re.fullmatch(r"step-\d{6}", p.name) and (p / "state.json").is_file()
        ]
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def worker_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stage_done(self, name: str) -> bool:
        return name in self._stages()

    def mark_stage(self, name: str, info: dict | None = None) -> None:
        stages = self._stages()
        stages[name] = info or {}
        atomic_write_json(self.stages_path, stages)

    def _stages(self) -> dict:
        try:
            return json.loads(self.stages_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}


WORKER_MODULE = "localft.run.worker"  # `python -m localft.run.worker RUN_DIR`: how a worker is recognised


def worker_running(run: RunDir) -> bool:
    """The one rule for "is this run training right now": the pid in worker.pid is alive and its
    command line names the worker module and this run's folder (the runner starts it that way)."""
    return process_alive(run.worker_pid(), WORKER_MODULE, str(run.path.resolve()))


def mark_recipe_process(run: RunDir, pid: int | None = None) -> None:
    """Record the recipe process driving `run` (default: this one) by its pid and start time."""
    pid = pid or os.getpid()
    atomic_write_text(run.recipe_pid_path, f"{pid} {process_started(pid)}\n")


def recipe_running(run: RunDir) -> bool:
    """A recipe process (`localft recipe run`, `localft demo`) still drives this run: it writes
    import, export and eval stages around the worker's training. The pid must still be the same
    process (same start time), so a pid the OS reused never counts."""
    try:
        pid, started = run.recipe_pid_path.read_text().split()
        pid_started = process_started(int(pid))
        return (
            pid_started is not None and abs(pid_started - float(started)) < 0.01 and process_alive(int(pid))
        )
    except (FileNotFoundError, ValueError):
        return False


def run_writing(run: RunDir) -> bool:
    """Some process still appends to the run's events: its worker, or the recipe around it."""
    return worker_running(run) or recipe_running(run)


@dataclass(frozen=True)
class RunSummary:
    id: str
    path: Path
    model: str
    status: str  # running | completed | stopped | failed | created
    step: int
    total: int
    last_loss: float | None
    best_val_loss: float | None
    started: float | None


def run_status(run: RunDir) -> RunSummary:
    state = fold(read_events(run.events_path))
    status = state.status
    if status == "running" and not worker_running(run):
        status = "failed"  # the worker died without writing Finished (kill -9, power loss)
    try:
        model = run.read_spec().model
    except RunError:
        model = "?"
    return RunSummary(
        run.id,
        run.path,
        model,
        status,
        state.step,
        state.total,
        state.loss,
        state.best_val_loss,
        state.started,
    )


def new_run(spec: TrainSpec, name: str | None = None, root: Path | None = None) -> RunDir:
    root = root or runs_dir()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or Path(spec.model).name or "run").strip("-")[:40]
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{stem or 'run'}"
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}-{n}"
    path.mkdir(parents=True)
    run = RunDir(path)
    run.write_spec(spec)
    return run


def discard_unstarted(run: RunDir) -> bool:
    """Remove a run that never started training (no training event, checkpoint or adapter): what a
    `train` that failed before its worker started leaves behind. Anything else is kept."""
    trained = any(isinstance(e, (RunStarted, Step, Finished)) for e in read_events(run.events_path))
    if trained or run.checkpoints_dir.exists() or run.adapter_dir.exists():
        return False
    shutil.rmtree(run.path, ignore_errors=True)
    return True


def open_run(ref: str | Path, root: Path | None = None) -> RunDir:
    """A run by path, by id, or by a unique id prefix/suffix."""
    p = Path(ref)
    if (p / "spec.json").is_file():
        return RunDir(p)
    root = root or runs_dir()
    if (root / str(ref) / "spec.json").is_file():
        return RunDir(root / str(ref))
    matches = [d for d in root.iterdir() if d.is_dir() and str(ref) in d.name] if root.is_dir() else []
    if len(matches) == 1:
        return RunDir(matches[0])
    if not matches:
        raise RunError(f"no run named {ref!r}; `localft runs` lists them")
    raise RunError(f"{ref!r} matches {len(matches)} runs; give more of the id")


def list_runs(root: Path | None = None) -> list[RunSummary]:
    root = root or runs_dir()
    if not root.is_dir():
        return []
    runs = [RunDir(d) for d in sorted(root.iterdir()) if (d / "spec.json").is_file()]
    return [run_status(r) for r in runs]


def recipe_info(run: RunDir) -> dict | None:
    try:
        return json.loads((run.path / RECIPE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
