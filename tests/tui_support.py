"""Shared pieces for the dashboard tests: a fixed machine report and runs built from recorded events."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from localft.atomic import atomic_write_text
from localft.config import TrainSpec
from localft.paths import runs_dir
from localft.run.folder import RunDir

FIXTURES = Path(__file__).parent / "fixtures" / "events"
RECORDED = FIXTURES / "tiny-run.jsonl"

# Snapshots need a machine report that does not change between runs (free memory does).
MACHINE = {
    "machine": {
        "os": "Linux 6.1", "arch": "x86_64", "cpu": "Test CPU @ 2.0GHz", "cores": 2,
        "ram_bytes": 24 * 2**30, "ram_available_bytes": 20 * 2**30, "apple_silicon": False,
        "gpus": [], "disk_free_bytes": 100 * 2**30,
    },
    "backends": {
        "torch": {"ok": True, "device": "cpu", "reason": "CPU: fp32 LoRA (slow; fine for small models)"},
        "mlx": {"ok": True, "device": "cpu", "reason": "MLX on CPU (mlx[cpu]; slow, for small models)"},
    },
}  # fmt: skip


# A fake worker for replays: its command line names localft.run.worker and the run, as the real one's
# does, so the runner treats it as the run's live worker while it appends the recorded lines.
REPLAY_WORKER = """
import sys, time
run, events, delay = sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(run + "/events.jsonl", "a", encoding="utf-8") as out:
    for line in open(events, encoding="utf-8"):
        out.write(line)
        out.flush()
        time.sleep(delay)
"""


def make_run(
    name: str = "20261122-120000-demo", events: Path | None = RECORDED, model: str = "embedded"
) -> RunDir:
    """A run folder with a spec and, when given, a copy of recorded events."""
    run = RunDir(runs_dir() / name)
    run.path.mkdir(parents=True)
    run.write_spec(TrainSpec(model=model, steps=30))
    if events is not None:
        shutil.copy(events, run.events_path)
    return run


def start_replay(run: RunDir, events: Path = RECORDED, delay: float = 0.02) -> subprocess.Popen:
    """Replay recorded events into `run` from a separate process, at `delay` seconds a line."""
    cmd = [sys.executable, "-c", REPLAY_WORKER, "localft.run.worker", str(run.path), str(events), str(delay)]
    proc = subprocess.Popen(cmd)
    atomic_write_text(run.pid_path, f"{proc.pid}\n")
    return proc


def record_notifications(app) -> list[str]:
    """Every notification's text from now on, kept: Textual drops one from app._notifications once
    it expires (5 s), which a slow machine can pass before the test looks."""
    said: list[str] = []
    notify = app.notify

    def recording(message, *args, **kwargs):
        said.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = recording
    return said


async def wait_until(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        await pilot.pause(0.05)
