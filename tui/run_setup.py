"""What the New run screen shows and starts, kept out of the screen: defaults, estimates, the data
preview, and launching a recipe as its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from localft.config import TrainSpec
from localft.errors import LocalftError
from localft.runs import RunDir


def default_value(path: tuple[str, ...]) -> str:
    value = TrainSpec()
    for part in path:
        value = getattr(value, part)
    return str(value)


def recipe_choices() -> list[tuple[str, str]]:
    from localft.recipes import all_recipes

    return [("Dataset only (plain LoRA run)", "none")] + [(r.name, r.name) for r in all_recipes()]


def sample_export() -> Path | None:
    """The bundled sample export `localft demo` uses, when this install has it."""
    from localft.recipes.commands import demo_export

    try:
        return demo_export()
    except LocalftError:
        return None


def measured_pace(model: str) -> tuple[float, str] | None:
    """Trained tokens/s of the newest earlier run of `model` on this machine, and that run's id."""
    from localft.events import Step, read_events
    from localft.runs import list_runs

    for summary in sorted(list_runs(), key=lambda r: r.id, reverse=True):
        if summary.model != model:
            continue
        steps = [e for e in read_events(RunDir(summary.path).events_path) if isinstance(e, Step)]
        if steps and steps[-1].tok_per_s > 0:
            return steps[-1].tok_per_s, summary.id
    return None


def time_estimate(spec: TrainSpec) -> str:
    """Upper bound: every row full (packing fills them) at the pace an earlier run measured here."""
    pace = measured_pace(spec.model)
    if pace is None:
        return "time: known after a first run of this model here"
    tokens = spec.steps * spec.batch_size * spec.grad_accum * spec.max_seq_len
    minutes = tokens / pace[0] / 60
    return f"time: up to ~{minutes:.0f} min ({tokens:,} tokens at {pace[0]:.0f} tok/s, measured in {pace[1]})"


def own_importer(recipe: str) -> bool:
    from localft.recipes import get_recipe

    return get_recipe(recipe).prepare_data is not None


def preview_report(source: Path, spec: TrainSpec) -> str:
    """The data report for `source` as `localft data` prints it, built in a scratch folder."""
    from localft.data.dataset import build_dataset
    from localft.data.report import format_report

    with tempfile.TemporaryDirectory(prefix="localft-preview-") as tmp:
        report = build_dataset(source, spec.data, Path(tmp))
    return format_report(report)


def launch_recipe(
    recipe: str, spec: TrainSpec, source: Path, sets: dict[str, str], wait_s: float = 180.0
) -> Path:
    """Start `localft recipe run` detached (it outlives the dashboard) and return its new run folder.
    The recipe keeps its own defaults; `sets` carries only what the user changed."""
    from localft.paths import localft_home, runs_dir
    from localft.processes import detached
    from localft.runs import atomic_write_text
    from localft.tui.follow import RECIPE_PID

    before = {p.name for p in runs_dir().iterdir()}
    log = localft_home() / "logs" / f"recipe-{recipe}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", "import sys; from localft.cli import main; main(sys.argv[1:])",
           "recipe", "run", recipe, "--from", str(source), "--model", spec.model,
           "--backend", spec.backend, "--new"]  # fmt: skip
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=os.environ.copy(), **detached())  # fmt: skip
    import time

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        new = sorted(p for p in runs_dir().iterdir() if p.name not in before and (p / "spec.json").is_file())
        if new:
            # The dashboard follows the run while this process lives (it writes events after training too).
            atomic_write_text(new[-1] / RECIPE_PID, f"{proc.pid}\n")
            return new[-1]
        if proc.poll() is not None:
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            raise LocalftError(
                lines[-1] if lines else f"the {recipe} recipe exited with code {proc.returncode}"
            )
        time.sleep(0.3)
    raise LocalftError(f"the {recipe} recipe started no run within {wait_s:.0f} s; see {log}")
