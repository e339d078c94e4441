"""kill -9 in the middle of a run, resume, and get the same loss curve as a run never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from localft.events import Checkpoint, Step, read_events
from tests.test_torch_train import make_run, train_run

# Trains the run given on the command line, as the worker would (events into events.jsonl).
CHILD = """
import sys
from localft.backends.torch import TorchBackend
from localft.events import EventSink
from localft.runs import RunDir
run = RunDir(__import__("pathlib").Path(sys.argv[1]))
with EventSink(run.events_path) as sink:
    TorchBackend().train(run.read_spec(), run, sink, lambda: False)
"""


def losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, Step)}


def test_kill_and_resume_matches_uninterrupted_run(tmp_path, tiny_models):
    overrides = dict(steps=24, save_every=4, eval_every=100, batch_size=2, lora={"dropout": 0.1})
    spec, reference = make_run(tmp_path / "a", tiny_models("llama"), n_valid=0, **overrides)
    expected = losses(train_run(spec, reference))

    spec, run = make_run(tmp_path / "b", tiny_models("llama"), n_valid=0, **overrides)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run.path)], cwd=os.getcwd())
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        done = [e.step for e in read_events(run.events_path) if isinstance(e, Checkpoint)]
        if done and max(done) >= 8:
            os.kill(child.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    assert child.wait(timeout=30) == -signal.SIGKILL, "the child finished before it could be killed"
    killed_at = run.latest_checkpoint()
    assert killed_at is not None and killed_at != run.checkpoint_path(24)

    resumed = train_run(spec, run)  # appends to the same events.jsonl, from the latest checkpoint
    got = losses(resumed)  # a step logged twice (after the checkpoint, before the kill) keeps its last value
    assert sorted(got) == list(range(1, 25))
    for step in range(1, 25):
        assert abs(got[step] - expected[step]) < 1e-4, (step, got[step], expected[step])
    starts = [e for e in resumed if type(e).__name__ == "RunStarted"]
    assert starts[-1].resumed_from == int(killed_at.name.split("-")[1])
