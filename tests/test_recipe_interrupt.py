"""Ctrl-C during `localft recipe run` stops training gracefully, and the same command continues from
the interrupted stage; SIGTERM stops a worker the same way (README: the demo, Where things go)."""

from __future__ import annotations

import json
import os
import random
import signal

import pytest

from localft.config import TrainSpec
from localft.events import Finished, RunStarted, Stage, Step, read_events
from localft.run import runner
from localft.run.folder import new_run, run_status
from tests.command_support import (
    kill_leftovers,
    localft,
    only_run,
    start_localft,
    stop_after_step,
    wait_for,
)


def people_records(n: int) -> list[dict]:
    rng = random.Random(0)
    names, cities = ["Ana", "Bo", "Chen", "Dara", "Eli", "Femi"], ["Oslo", "Lima", "Pune", "Turku"]
    rows = []
    for _ in range(n):
        name, city, age = rng.choice(names), rng.choice(cities), rng.randint(20, 70)
        text = f"{name} is {age} years old and moved to {city} last spring."
        rows.append({"input": text, "output": {"name": name, "age": age, "city": city}})
    return rows


@pytest.mark.slow
@pytest.mark.llama
def test_ctrl_c_in_recipe_run_then_the_same_command_continues_from_training(tiny_models, tmp_path):
    """On the json-extractor recipe, which this also runs end to end (its report's JSON figures)."""
    pytest.importorskip("llama_cpp")
    model = tiny_models("llama")
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in people_records(40)))
    command = [
        "recipe", "run", "json-extractor", "--from", records, "--model", model,
        "--steps", "12", "--set", "max_seq_len=128", "--set", "save_every=4", "--set", "eval_every=4",
    ]  # fmt: skip
    proc = start_localft(*command)
    run = None
    try:
        run = wait_for(only_run, what="the recipe's run")
        stop_after_step(run, 3, lambda: proc.send_signal(signal.SIGINT))  # Ctrl-C reaches the CLI
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_leftovers(run, proc)
    assert proc.returncode == 130, out
    assert "stopped. Run the same command again to continue from the last finished stage." in out
    stopped = read_events(run.events_path)[-1]
    assert isinstance(stopped, Finished) and stopped.status == "stopped" and 3 <= stopped.step < 12
    assert run.latest_checkpoint().name == f"step-{stopped.step:06d}"  # the graceful stop saved
    assert run.stage_done("import") and not run.stage_done("train")

    again = localft(*command)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming: import already done" in again.stdout + again.stderr
    events = read_events(run.events_path)
    imports = [e for e in events if isinstance(e, Stage) and e.detail == "import"]
    assert len(imports) == 1  # the data was not imported again
    starts = [i for i, e in enumerate(events) if isinstance(e, RunStarted)]
    assert len(starts) == 2 and events[starts[1]].resumed_from == stopped.step
    resumed_steps = [e.step for e in events[starts[1] :] if isinstance(e, Step)]
    assert resumed_steps == list(range(stopped.step + 1, 13))  # no step trained twice or skipped
    assert all(run.stage_done(s) for s in ("train", "export", "eval"))
    assert list(run.gguf_dir.glob("*-Q4_K_M.gguf"))
    metrics = json.loads((run.eval_dir / "report.json").read_text())["metrics"]
    for figure in ("valid_json_rate", "key_match_rate", "field_accuracy"):  # the recipe's before/after
        assert all(0.0 <= metrics[figure][side] <= 1.0 for side in ("base", "tuned")), figure
    assert metrics["perplexity"]["tuned"] < metrics["perplexity"]["base"]


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setenv("LOCALFT_BACKENDS", "scripted=tests.scripted_backend:ScriptedBackend")
    monkeypatch.setenv("PYTHONPATH", os.getcwd())


def test_sigterm_stops_a_worker_gracefully_with_a_checkpoint(tmp_path, scripted):
    spec = TrainSpec(steps=400, save_every=50, eval_every=5, batch_size=1, max_seq_len=64)
    run = new_run(spec, root=tmp_path)
    run.data_dir.mkdir()
    post = '{"text": "Hello there, this is a short post about coffee and code."}\n'
    run.split_path("train").write_text(post * 4)
    run.split_path("valid").write_text(post)
    runner.start_worker(run, backend="scripted")
    try:
        stop_after_step(run, 7, lambda: os.kill(run.worker_pid(), signal.SIGTERM), by_file=False)
        assert runner.wait_worker(run, timeout=30)
    finally:
        kill_leftovers(run)
    last = read_events(run.events_path)[-1]
    assert isinstance(last, Finished) and last.status == "stopped" and 7 <= last.step <= 8
    assert run.latest_checkpoint().name == f"step-{last.step:06d}"  # saved off the save_every grid
    assert run_status(run).status == "stopped"
