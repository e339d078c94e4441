"""A damaged newest checkpoint (torch): `runs show` names it, `runs resume` continues from the newest
checkpoint that verifies and says so, and the resumed losses equal an uninterrupted run's."""

from __future__ import annotations

import json

import pytest

from localft.events import Log, RunStarted, Step, read_events
from localft.run.checkpoints import find_resume_checkpoint, verify_checkpoint
from tests.test_cli import run_cli
from tests.training import make_run, train_run

SPEC = dict(backend="torch", steps=12, save_every=4, eval_every=100, batch_size=2, lora={"dropout": 0.1})


def losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, Step)}


def stop_after(steps: int):
    """A stop request before step `steps + 1`: the run ends there like a crashed one (no Finished)."""
    calls = iter(range(10**6))
    return lambda: next(calls) >= steps


def truncate(path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.slow
def test_resume_skips_a_truncated_checkpoint_and_matches_an_uninterrupted_run(capsys, tmp_path, tiny_models):
    spec, reference = make_run(tmp_path / "a", tiny_models("llama"), n_valid=0, **SPEC)
    expected = losses(train_run(spec, reference))

    spec, run = make_run(tmp_path / "b", tiny_models("llama"), n_valid=0, **SPEC)
    train_run(spec, run, stop=stop_after(8))
    assert [p.name for p in run.checkpoints()] == ["step-000004", "step-000008"]
    truncate(run.checkpoint_path(8) / "adapter_model.safetensors")

    code, out, _ = run_cli(capsys, "runs", "show", str(run.path))
    assert code == 0
    assert "damaged checkpoint step-000008: adapter_model.safetensors is 100 bytes but was" in out
    assert f"resume: `localft runs resume {run.id}` continues from step-000004" in out

    code, out, err = run_cli(capsys, "runs", "resume", str(run.path))
    assert code == 0, err
    assert f"run {run.id} resumed from step-000004, skipping damaged step-000008" in out
    assert "warning: skipped damaged checkpoint step-000008" in err

    events = read_events(run.events_path)
    attempt = events[max(i for i, e in enumerate(events) if isinstance(e, RunStarted)) - 1 :]
    warning = next(e for e in attempt if isinstance(e, Log) and e.level == "warning")
    assert warning.message.endswith("resuming from step-000004")
    assert [e for e in attempt if isinstance(e, RunStarted)][0].resumed_from == 4
    got = losses(attempt)
    assert sorted(got) == list(range(5, 13))
    for step in range(5, 13):
        assert abs(got[step] - expected[step]) < 1e-4, (step, got[step], expected[step])
    # Training past step 8 wrote a good checkpoint in place of the damaged one.
    assert verify_checkpoint(run.checkpoint_path(8)) is None
    assert find_resume_checkpoint(run) == (run.checkpoint_path(12), [])


def test_checkpoints_without_an_integrity_record_still_load_and_are_checked(tmp_path, tiny_models):
    """Checkpoints written before the record existed resume as before; the verifier checks what
    their files allow (safetensors headers against sizes, torch's zip archives)."""

    def strip_records() -> None:  # as the old code wrote them
        for folder in run.checkpoints():
            state = json.loads((folder / "state.json").read_text())
            state.pop("files", None)
            (folder / "state.json").write_text(json.dumps(state))

    spec, run = make_run(tmp_path, tiny_models("llama"), n_valid=0, **{**SPEC, "steps": 8})
    train_run(spec, run, stop=stop_after(4))
    strip_records()
    resumed = train_run(spec, run)
    assert [e for e in resumed if isinstance(e, RunStarted)][-1].resumed_from == 4
    assert not [e for e in resumed if isinstance(e, Log) and e.level == "warning"]
    strip_records()
    assert [verify_checkpoint(f) for f in run.checkpoints()] == [None, None]

    optimizer = run.checkpoint_path(8) / "optimizer.pt"
    truncate(optimizer, keep=optimizer.stat().st_size - 50)
    assert verify_checkpoint(run.checkpoint_path(8)) == "optimizer.pt is truncated or corrupt"
    adapter = run.checkpoint_path(4) / "adapter_model.safetensors"
    size = adapter.stat().st_size
    truncate(adapter, keep=size - 50)
    problem = verify_checkpoint(run.checkpoint_path(4), hashes=False)
    assert problem == f"adapter_model.safetensors is {size - 50:,} bytes but its header needs {size:,}"
    assert find_resume_checkpoint(run)[0] is None
