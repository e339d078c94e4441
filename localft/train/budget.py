"""`--time` on a first run: no earlier run measured a pace here, so the loop times its first steps
(and one validation pass) and fixes the step count the budget holds; the new count goes into
plan.json and spec.json, so a resume trains to it, and every later Step event carries it."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from localft.events import Log
from localft.plan import CALIBRATION_STEPS, apply_plan, fmt_duration, write_plan


def steps_in_budget(
    budget_s: float, elapsed_s: float, step_s: float, eval_s: float, eval_every: int, done: int, planned: int
) -> int:
    """The step count a budget holds: the steps done, and as many more as the time left pays for at
    `step_s` a step plus its share of validations (`eval_s` each, and one more at the last step);
    never more than planned, never fewer than done."""
    left = budget_s - elapsed_s - eval_s
    more = math.floor(left / (step_s + eval_s / max(eval_every, 1))) if left > 0 else 0
    return min(planned, done + max(more, 0))


def needs_calibration(plan, step: int) -> bool:
    return bool(plan.time_budget_s and not plan.pace and plan.steps > CALIBRATION_STEPS and step == 0)


def calibrate(loop, started: float, first_done: float) -> None:
    """At step CALIBRATION_STEPS: time one validation pass, then fix the plan's steps from the
    steps after the first (the first pays for warm-up). Rank 0's figures decide for every rank."""
    state, plan = loop.state, loop.plan
    tic = time.perf_counter()
    if loop.valid_rows and plan.eval_every < plan.steps:
        loop.validation_loss()  # its result is not a scheduled evaluation: only its duration counts
    eval_s = time.perf_counter() - tic if loop.valid_rows else 0.0
    step_s = (tic - first_done) / (state.step - 1)
    elapsed = time.perf_counter() - started
    steps = steps_in_budget(
        plan.time_budget_s, elapsed, step_s, eval_s, plan.eval_every or 1, state.step, plan.steps
    )
    if loop.world.several:
        steps = int(loop.all_reduce_sum([float(steps) if loop.world.is_writer else 0.0])[0])
    pace = state.tokens / max(elapsed, 1e-9)
    loop.plan = replace(
        plan, steps=steps, eval_every=min(plan.eval_every or steps, steps), pace=pace,
        pace_from=f"{loop.run_dir.id}'s first {state.step} steps",
        notes=[n for n in plan.notes if not n.startswith("time:")],  # describe() now prints the pace
    )  # fmt: skip
    if loop.world.is_writer:
        write_plan(loop.run_dir.path, loop.plan)
        loop.run_dir.write_spec(apply_plan(loop.run_dir.read_spec(), loop.plan))
    loop.eval_every = loop.plan.eval_every
    loop.emit(Log(
        f"time: steps 2-{state.step} took {step_s:.1f} s each, a validation {eval_s:.1f} s: the "
        f"{fmt_duration(plan.time_budget_s)} budget holds {steps} steps (of {plan.steps} planned)"
    ))  # fmt: skip
