"""Benchmarks run in a temporary LOCALFT_HOME: their runs never show in the user's run list."""

from __future__ import annotations

import sys
from pathlib import Path

from localft.config import TrainSpec
from localft.run.folder import list_runs, new_run

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_a_benchmark_run_stays_out_of_the_users_run_list(localft_home, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from bench_home import use_temporary_home

    new_run(TrainSpec(), name="mine")
    home = use_temporary_home(tmp_path / "bench")
    bench_run = new_run(TrainSpec(), name="bench")
    assert bench_run.path.is_relative_to(home)
    # Prepared models are shared, read only: the benchmark does not convert the embedded model again.
    assert (home / "cache" / "models").resolve() == (localft_home / "cache" / "models").resolve()
    monkeypatch.setenv("LOCALFT_HOME", str(localft_home))  # the user's own home again
    assert [r.id.split("-", 2)[-1] for r in list_runs()] == ["mine"]
    assert "bench_home" in sys.modules
