"""The commands as a user runs them (real `localft` processes): `train` with --set, `runs
list|show|watch|stop|resume`, `merge`, `eval`, and user errors as one `error:` line with exit 2.
One short training run of a tiny model is shared by the tests that read a finished run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from localft.events import Finished, RunStarted, Step, read_events
from localft.run.folder import RunDir
from tests.command_support import kill_leftovers, localft, start_localft, stop_after_step, wait_for
from tests.test_export_adapter_runs import check_adapter_matches_merged

EXPORT = Path(__file__).resolve().parent.parent / "examples" / "linkedin-export.zip"
SHORT = ["--set", "max_seq_len=128", "--set", "eval_every=3", "--set", "save_every=3"]


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A LOCALFT_HOME for this module's processes (the per-test home is too short-lived to share)."""
    from tests.conftest import SHARED_MODELS

    folder = tmp_path_factory.mktemp("commands-home")
    (folder / "cache").mkdir()
    (folder / "cache" / "models").symlink_to(SHARED_MODELS)
    return {"LOCALFT_HOME": str(folder)}


@pytest.fixture(scope="module")
def trained(home, tiny_models):
    """`localft train` to the end on the sample export: 6 steps of a tiny llama at a high rate (so the adapter shows), rank set by --set."""
    model = tiny_models("llama")
    result = localft(
        "train", EXPORT, "--model", model, "--steps", "6", "--lr", "0.02", "--name", "cmd", *SHORT,
        "--set", "lora.rank=4", "--set", "lora.alpha=8", "--set", "data.urls=strip", env=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    run = RunDir(next((Path(home["LOCALFT_HOME"]) / "runs").glob("*cmd*")))
    return run, result, model


def test_train_applies_set_values_and_trains_to_the_end(trained):
    run, result, _ = trained
    assert f"run {run.id} started" in result.stdout and "plan: " in result.stdout
    assert f"next: localft export {run.id} --quant Q4_K_M" in result.stdout
    spec = json.loads((run.path / "spec.json").read_text())
    assert (spec["lora"]["rank"], spec["lora"]["alpha"], spec["data"]["urls"]) == (4, 8, "strip")
    assert (spec["steps"], spec["max_seq_len"]) == (6, 128)
    # The values reached training: the saved adapter has rank 4 and alpha 8.
    adapter = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (4, 8)
    end = read_events(run.events_path)[-1]
    assert isinstance(end, Finished) and (end.status, end.step) == ("completed", 6)
    assert [c.name for c in run.checkpoints()] == ["step-000003", "step-000006"]


def test_runs_list_show_and_watch_describe_the_finished_run(trained, home):
    run, _, _ = trained
    listed = localft("runs", "list", env=home)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(run.id))
    assert row.split()[1:3] == ["completed", "6/6"]
    (as_json,) = [
        r for r in json.loads(localft("runs", "list", "--json", env=home).stdout) if r["id"] == run.id
    ]
    assert (as_json["status"], as_json["step"], as_json["resume"]) == ("completed", 6, None)
    shown = localft("runs", "show", run.id, env=home).stdout
    assert f"{run.id}  completed  step 6/6" in shown and "plan: " in shown
    assert "checkpoints: 2, newest step-000006   adapter: yes" in shown
    watched = localft("runs", "watch", run.id, env=home, timeout=60)
    assert watched.returncode == 0 and "run completed at step 6" in watched.stdout + watched.stderr


def test_merge_writes_the_base_with_the_adapter_applied(trained, home, tmp_path):
    from safetensors.numpy import load_file

    run, _, model = trained
    result = localft("merge", run.id, "-o", tmp_path / "merged", env=home)
    assert result.returncode == 0 and f"merged model: {tmp_path / 'merged'}" in result.stdout
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    base = load_file(Path(model) / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert merged[name].shape == base[name].shape and abs(merged[name] - base[name]).max() > 1e-6
    assert (merged["model.embed_tokens.weight"] == base["model.embed_tokens.weight"]).all()
    for extra in ("config.json", "tokenizer.json", "chat_template.jinja"):
        assert (tmp_path / "merged" / extra).is_file(), extra


@pytest.mark.slow
@pytest.mark.llama
def test_export_with_adapter_then_eval(trained, home, tmp_path):
    pytest.importorskip("llama_cpp")
    run, _, model = trained
    exported = localft("export", run.id, "--quant", "F16", "--adapter", "--no-verify", env=home)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    check_adapter_matches_merged(run, model, tmp_path)  # the adapter GGUF is the merged model's change

    evaluated = localft("eval", run.id, "--quant", "F16", "--samples", "2", "--max-tokens", "8", env=home)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    report = json.loads((run.eval_dir / "report.json").read_text())
    ppl = report["metrics"]["perplexity"]
    assert ppl["base"] > 1 and ppl["tuned"] > 1 and len(report["samples"]) == 2
    assert "Test perplexity" in evaluated.stdout and (run.eval_dir / "report.md").is_file()


@pytest.mark.slow
def test_runs_stop_watch_and_resume_a_live_run(home, tiny_models):
    model = tiny_models("llama")
    started = localft("train", EXPORT, "--model", model, "--steps", "400", "--name", "live", "--detach",
                      *SHORT, env=home)  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    run = RunDir(next((Path(home["LOCALFT_HOME"]) / "runs").glob("*live*")))
    watcher = stopper = None
    try:
        watcher = start_localft("runs", "watch", run.id, env=home)
        stopper_box = []
        stop_after_step(run, 2, lambda: stopper_box.append(start_localft("runs", "stop", run.id, env=home)))
        stopper = stopper_box[0]
        stop_out, _ = stopper.communicate(timeout=60)
        first = read_events(run.events_path)[-1]
        assert stopper.returncode == 0 and f"run {run.id} stopped; `localft runs resume {run.id}`" in stop_out
        assert isinstance(first, Finished) and first.status == "stopped" and 2 <= first.step <= 3
        watch_out, _ = watcher.communicate(timeout=30)  # the watcher ends with the run
        assert watcher.returncode == 0 and f"run stopped at step {first.step}" in watch_out

        shown = localft("runs", "show", run.id, env=home).stdout
        assert f"resume: `localft runs resume {run.id}` continues from step-{first.step:06d}" in shown
        resumed = localft("runs", "resume", run.id, "--detach", env=home)
        assert f"run {run.id} resumed from step-{first.step:06d}" in resumed.stdout
        stop_after_step(run, first.step + 2, lambda: os.kill(run.worker_pid(), signal.SIGINT), by_file=False)
        wait_for(lambda: isinstance(read_events(run.events_path)[-1], Finished), timeout=60, what="the stop")
    finally:
        kill_leftovers(run, *filter(None, (watcher, stopper)))
    events = read_events(run.events_path)
    starts = [i for i, e in enumerate(events) if isinstance(e, RunStarted)]
    assert events[starts[-1]].resumed_from == first.step
    assert [e.step for e in events[starts[-1] :] if isinstance(e, Step)][0] == first.step + 1
    assert events[-1].status == "stopped"
    assert localft("runs", "stop", run.id, env=home).stdout.strip() == f"run {run.id} is not running"


def test_a_run_that_cannot_fit_is_one_error_line_and_no_run(home, tiny_models):
    model = tiny_models("llama")
    line = one_error_line(localft("train", EXPORT, "--model", model, "--batch-size", "65536", env=home))
    assert (
        line.startswith("error: this run needs about ") and "is free" in line and "try --batch-size" in line
    )
    assert not list((Path(home["LOCALFT_HOME"]) / "runs").glob("*linkedin*"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nobody/no-such-model-xyz"], "not in the local cache"),
        (["--model", "no-such-model"], "unknown model"),
        (["--set", "lora.rnak=4"], "lora.rnak"),
        (["--set", "rank4"], "--set expects key=value, got 'rank4'"),
        (["--time", "soon"], "--time expects a duration like 15m"),
    ],
)
def test_bad_train_arguments_are_one_error_line(home, args, message):
    assert message in one_error_line(localft("train", EXPORT, *args, env=home))
