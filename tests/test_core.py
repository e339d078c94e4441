"""Config, events and run directories: the contracts every other part reads and writes."""

from __future__ import annotations

import json
import threading

import pytest

from localft.atomic import atomic_dir, atomic_write_json
from localft.config import TrainSpec, field_help, load_preset, merge_overrides
from localft.errors import ConfigError, RunError
from localft.events import (
    Checkpoint,
    EventSink,
    Finished,
    Log,
    RunStarted,
    Stage,
    Step,
    events_with_offsets,
    from_json,
    read_events,
    to_json,
)
from localft.run.folder import list_runs, new_run, open_run, run_status


def test_every_event_round_trips_through_json():
    events = [
        RunStarted("r1", "torch", "embedded", "cpu", 100, resumed_from=20),
        Step(3, 100, 2.5, 1e-4, 1234, 88.5, 1 << 30),
        Checkpoint(50, "/x/step-000050"),
        Log("héllo ✨", level="warning"),
        Stage("convert", 3, 10, "F16"),
        Finished("failed", 7, 5, 1.25, "boom"),
    ]
    for ev in events:
        line = to_json(ev)
        assert json.loads(line)["kind"] == ev.kind
        assert from_json(line) == ev


def test_reader_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventSink(path) as sink:
        sink(Step(1, 10, 2.0, 1e-4, 10, 1.0, 0))
    with open(path, "a") as f:
        f.write('{"kind": "step", "step": 2, "tot')  # the writer was killed mid-line
    assert [e.step for e in read_events(path)] == [1]


def test_reading_from_an_offset_holds_back_a_line_still_being_written(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventSink(path) as sink:
        for i in range(1, 4):
            sink(Step(i, 3, 1.0, 1e-4, i, 1.0, 0))
        line = to_json(Finished("completed", 3))
        sink._file.write(line[:10])  # a line arriving in two writes must come out once, whole
        sink._file.flush()
        first = events_with_offsets(path, 0)
        assert [e.kind for e, _ in first] == ["step"] * 3
        sink._file.write(line[10:] + "\n")
        sink._file.flush()
    rest = events_with_offsets(path, first[-1][1])
    assert [e.kind for e, _ in rest] == ["finished"] and rest[-1][1] == path.stat().st_size
    assert events_with_offsets(path, rest[-1][1]) == []


def test_unknown_spec_key_and_bad_value_name_the_field(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text("steps = 10\nlearning_rte = 0.1\n[lora]\nrank = 4\n")
    with pytest.raises(ConfigError, match=r"learning_rte: unknown key"):
        load_preset(preset)
    preset.write_text("steps = 10\n[lora]\nrank = 0\n")
    with pytest.raises(ConfigError, match=r"lora\.rank"):
        load_preset(preset)
    preset.write_text("steps = 12\nbatch_size = 2\n[lora]\nrank = 4\n[data]\nurls = 'strip'\n")
    spec = load_preset(preset)
    assert (spec.steps, spec.batch_size, spec.lora.rank, spec.lora.alpha, spec.data.urls) == (
        12,
        2,
        4,
        16.0,
        "strip",
    )


def test_overrides_merge_nested_and_validate():
    spec = merge_overrides(TrainSpec(), {"lora": {"rank": 32}, "steps": 7})
    assert spec.lora.rank == 32 and spec.lora.alpha == TrainSpec().lora.alpha and spec.steps == 7
    with pytest.raises(ConfigError, match="steps"):
        merge_overrides(TrainSpec(), {"steps": -1})


def test_field_help_covers_every_field():
    helps = field_help(TrainSpec)
    assert set(helps) == set(TrainSpec.model_fields)
    assert all(text for name, text in helps.items() if name not in ("lora", "data"))


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "ckpt"
    with pytest.raises(RuntimeError, match="killed mid-write"), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed mid-write")
    assert list(target.parent.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "state.json").write_text("{}")
    assert (target / "state.json").is_file()


def test_incomplete_checkpoints_are_never_used(tmp_path):
    run = new_run(TrainSpec(steps=5), root=tmp_path)
    run.checkpoint_path(10).mkdir(parents=True)  # no state.json: a crash mid-save
    good = run.checkpoint_path(5)
    good.mkdir()
    atomic_write_json(good / "state.json", {"step": 5})
    assert run.latest_checkpoint() == good


def test_runs_are_listed_with_status(tmp_path):
    run = new_run(TrainSpec(steps=5), name="demo", root=tmp_path)
    assert run_status(run).status == "created"
    with EventSink(run.events_path) as sink:
        sink(RunStarted(run.id, "torch", "embedded", "cpu", 5))
        sink(Step(5, 5, 1.5, 1e-4, 500, 10.0, 0))
        sink(Finished("completed", 5))
    [summary] = list_runs(tmp_path)
    assert (summary.status, summary.step, summary.last_loss) == ("completed", 5, 1.5)
    assert open_run(run.id[-8:], root=tmp_path) == run
    with pytest.raises(RunError, match="no run named"):
        open_run("nope", root=tmp_path)


def test_a_started_run_whose_worker_is_gone_reads_as_failed(tmp_path):
    run = new_run(TrainSpec(steps=5), root=tmp_path)
    run.pid_path.write_text("999999\n")
    with EventSink(run.events_path) as sink:
        sink(RunStarted(run.id, "torch", "embedded", "cpu", 5))
    assert run_status(run).status == "failed"


def test_builtin_presets_are_valid_specs():
    from localft.config import preset_names

    names = preset_names()
    assert {"cpu-small", "cuda-qlora", "mac-mlx"} <= set(names)
    specs = {name: load_preset(name) for name in names}
    assert specs["cuda-qlora"].quantize == "4bit" and specs["mac-mlx"].backend == "mlx"
    with pytest.raises(ConfigError, match="built-in presets: cpu-small"):
        load_preset("no-such-preset")


def test_ensure_dir_is_safe_from_many_threads_at_once(tmp_path):
    """The dashboard lists runs, estimates and launches from several threads at the same moment;
    with a shared probe file name one thread deleted another's probe and the run never started."""
    from localft.paths import ensure_dir

    errors: list[Exception] = []
    for round_ in range(20):
        folder = tmp_path / f"home-{round_}" / "runs"
        barrier = threading.Barrier(8)

        def make(folder=folder, barrier=barrier) -> None:
            barrier.wait()
            try:
                ensure_dir(folder)
            except ConfigError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=make) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert folder.is_dir() and not list(folder.iterdir())  # no probe left behind
    assert errors == []


def test_ensure_dir_names_the_folder_it_cannot_write(tmp_path):
    from localft.paths import ensure_dir

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"cannot write to .*file/runs .*set LOCALFT_HOME"):
        ensure_dir(blocker / "runs")


def test_a_damaged_spec_is_a_run_error_and_runs_list_survives_it(tmp_path):
    run = new_run(TrainSpec(), name="damaged")
    for junk in ("{not json", "[1, 2]"):
        run.spec_path.write_text(junk, encoding="utf-8")
        with pytest.raises(RunError, match=r"spec.json is damaged .*cannot be used"):
            run.read_spec()
        assert [s.model for s in list_runs() if s.id == run.id] == ["?"]
