"""`--time` on a first run here (no earlier pace): the loop times its first steps, fixes the step
count the budget holds (plan.json, spec.json, the Step events), and trains about that long."""

from __future__ import annotations

import pytest

from localft.events import Checkpoint, Log, Step
from localft.plan.planner import describe, read_plan
from localft.train.budget import steps_in_budget
from tests.training import make_run, train_run


def test_the_budget_pays_for_steps_and_their_share_of_validations():
    # 60 s, 10 s gone, 2 s a step, a 4 s validation every 4 steps (1 s a step) and one at the end.
    assert steps_in_budget(60, 10, 2.0, 4.0, 4, done=4, planned=500) == 4 + 15
    assert steps_in_budget(60, 10, 2.0, 0.0, 4, done=4, planned=10) == 10  # never past the plan
    assert steps_in_budget(60, 70, 2.0, 0.0, 4, done=4, planned=500) == 4  # already over: stop here


@pytest.mark.slow
def test_a_short_budget_on_a_first_run_trains_for_that_long(tmp_path):
    budget_s = 40
    spec, run = make_run(tmp_path, "embedded", n_train=200, n_valid=4, steps=None, epochs=50,
                         time_budget_min=budget_s / 60, eval_every=10, save_every=1000)  # fmt: skip
    events = train_run(spec, run)
    plan = read_plan(run.path)
    assert plan.pace and plan.pace_from == f"{run.id}'s first 4 steps" and plan.steps < 1000
    assert run.read_spec().steps == plan.steps
    from localft.train.budget import Calibration
    from localft.train.state import LoopState

    assert Calibration.for_attempt(plan, LoopState()) is None  # a resume trains to the fixed count
    assert [e.total for e in events if isinstance(e, Step)][3:] == [plan.steps] * (plan.steps - 3)
    fixed = [e.message for e in events if isinstance(e, Log) and "budget holds" in e.message]
    assert fixed == [f"{fixed[0].split(': the')[0]}: the {budget_s} s budget holds {plan.steps} steps"
                     f" (of {fixed[0].rsplit('(of ', 1)[1]}"]  # fmt: skip
    began = next(e.time for e in events if isinstance(e, Log) and "rows per epoch" in e.message)
    ended = [e.time for e in events if isinstance(e, Checkpoint)][-1]
    assert 0.8 * budget_s <= ended - began <= 1.2 * budget_s, (ended - began, fixed)
    lines = "\n".join(describe(plan))  # the plan now knows its pace
    assert "the first 4 steps measure it" not in lines and f"(measured in {run.id}'s first 4 steps)" in lines
    print(f"trained {ended - began:.1f} s of a {budget_s} s budget, {plan.steps} steps; {fixed[0]}")
