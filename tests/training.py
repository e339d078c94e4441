"""Runs for the training tests: a run folder with small chat splits, and training it through the one
loop (localft.train) on either backend, as the worker does."""

from __future__ import annotations

import json
from pathlib import Path

from localft.config import TrainSpec
from localft.events import EventSink, read_events
from localft.run.folder import new_run

TOPICS = ["coffee", "rust", "hiking", "startups", "jazz", "gardens", "trains", "chess"]


def chat_rows(n: int, seed: int = 0) -> list[dict]:
    """Repetitive chat rows: a tiny model can learn them within a few steps."""
    rows = []
    for i in range(n):
        topic = TOPICS[(i + seed) % len(TOPICS)]
        reply = f"I love {topic}. " * (1 + i % 4) + "That is all."
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "You are Ann."},
                    {"role": "user", "content": f"Write about {topic}."},
                    {"role": "assistant", "content": reply},
                ]
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_run(tmp_path: Path, model_dir: Path, n_train: int = 24, n_valid: int = 6, **overrides):
    """A run folder with small train/valid splits and a CPU spec for `model_dir` (torch unless
    `backend=` says otherwise)."""
    fields = dict(
        model=str(model_dir), backend="torch", device="cpu", steps=6, batch_size=2, max_seq_len=128,
        learning_rate=2e-3, warmup_steps=1, eval_every=3, save_every=3, seed=0,
    )  # fmt: skip
    fields.update(overrides)
    spec = TrainSpec(**fields)
    run = new_run(spec, root=tmp_path / "runs")
    run.data_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run.split_path("train"), chat_rows(n_train))
    if n_valid:
        write_jsonl(run.split_path("valid"), chat_rows(n_valid, seed=3))
    return spec, run


def train_run(spec, run, stop=lambda: False, backend=None) -> list:
    """Train `run` on its plan (planned once and stored, as the worker does); all of events.jsonl."""
    from localft.run.worker import run_plan
    from localft.train import train

    with EventSink(run.events_path) as sink:
        train(run, run_plan(run), sink, stop, backend=backend)
    return read_events(run.events_path)


class Hooked:
    """A real backend whose sessions are handed to `on_load` as they are built, so a test can add a
    hook to the real model (record batches, raise the framework's own out-of-memory error)."""

    def __init__(self, name: str, on_load) -> None:
        from localft.backends import get_backend

        self.inner, self.on_load = get_backend(name), on_load
        self.name = name

    def check(self):
        return self.inner.check()

    def load(self, request):
        session = self.inner.load(request)
        self.on_load(session)
        return session

    def merge(self, run, out):
        return self.inner.merge(run, out)


def pause_env(kind: str, step: int, flag: Path) -> dict:
    """Environment under which a worker process pauses itself (SIGSTOP) right after recording the
    "step" or "checkpoint" event of `step`, once, while `flag` exists (tests/worker_pause)."""
    import os

    flag.write_text("pause once\n")
    paths = [str(Path(__file__).parent / "worker_pause"), os.getcwd(), os.environ.get("PYTHONPATH", "")]
    return {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "LOCALFT_TEST_PAUSE": f"{kind}:{step}:{flag}",
    }


def kill_9_after_checkpoint(run, step: int, timeout: float = 240):
    """Train `run` in a real worker process, kill -9 it once the checkpoint of `step` is written
    (the worker pauses itself there, so the kill never races the next steps) and return the newest
    checkpoint folder it left. The worker is killed whatever happens."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from localft.events import Checkpoint

    env = {**os.environ, **pause_env("checkpoint", step, run.path / "pause-once")}
    with open(run.log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "localft.run.worker", str(run.path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + timeout
        while step not in [e.step for e in read_events(run.events_path) if isinstance(e, Checkpoint)]:
            assert worker.poll() is None, run.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, f"no checkpoint of step {step} within {timeout:.0f} s"
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL, "the worker ended before the kill"
    return run.latest_checkpoint()
