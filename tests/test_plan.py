"""The plan of a run: decided once, stored in the run, read back the same."""

from __future__ import annotations

import pytest

from localft.config import TrainSpec
from localft.errors import RunError
from localft.plan import PLAN_FILE, Plan, plan, read_plan, write_plan


def test_the_plan_on_this_cpu_machine_is_torch_fp32_and_fits(tiny_models):
    p = plan(TrainSpec(model=str(tiny_models("llama")), batch_size=2, grad_accum=3, steps=7))
    assert (p.backend, p.device, p.precision) == ("torch", "cpu", "fp32")
    assert (p.micro_batch, p.grad_accum, p.steps, p.global_batch) == (2, 3, 7, 6)
    assert p.fits and 0 < p.memory_needed < p.memory_available and p.memory_where == "RAM"


def test_a_plan_round_trips_through_the_run_folder(tmp_path):
    p = Plan("mlx", "cpu", "fp32", "4bit", 4, 2, 100, 512, epochs=2.5, notes=["because"])
    assert read_plan(tmp_path) is None
    write_plan(tmp_path, p)
    assert read_plan(tmp_path) == p
    (tmp_path / PLAN_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(RunError, match="plan.json is damaged"):
        read_plan(tmp_path)
