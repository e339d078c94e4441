"""`--time` on a first run: no earlier run measured a pace here, so the loop times its first steps
(and one validation pass) and fixes the step count the budget holds; the new count goes into
plan.json and spec.json, so a resume trains to it, and every later Step event carries it."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from localft.events import Log
from localft.plan.planner import CALIBRATION_STEPS, apply_plan, fmt_duration, write_plan


def steps_in_budget(
    budget_s: float, elapsed_s: float, step_s: float, eval_s: float, eval_every: int, done: int, planned: int
) -> int:
    """The step count a budget holds: the steps done, and as many more as the time left pays for at
    `step_s` a step plus its share of validations (`eval_s` each, and one more at the last step);
    never more than planned, never fewer than done."""
    left = budget_s - elapsed_s - eval_s
    more = math.floor(left / (step_s + eval_s / max(eval_every, 1))) if left > 0 else 0
    return min(planned, done + max(more, 0))


class Calibration:
    """One attempt's timing of its first CALIBRATION_STEPS steps (a resume before the count was
    fixed calibrates again, counting the training time its checkpoint already spent)."""

    def __init__(self, state) -> None:
        self.start_step, self.start_tokens, self.spent = state.step, state.tokens, state.train_seconds
        self.started = self.first_done = time.perf_counter()

    @classmethod
    def for_attempt(cls, plan, state) -> Calibration | None:
        """A calibration where --time has no measured pace and the plan has steps to cut."""
        if plan.time_budget_s and not plan.pace and plan.steps > state.step + CALIBRATION_STEPS:
            return cls(state)
        return None

    def after_step(self, loop) -> bool:
        """Called after each step; True once the count is fixed (nothing more to time)."""
        done = loop.state.step - self.start_step
        if done == 1:
            self.first_done = time.perf_counter()  # the first step pays for warm-up: not timed
        if done < CALIBRATION_STEPS:
            return False
        self.fix_steps(loop, done)
        return True

    def fix_steps(self, loop, done: int) -> None:
        """Time one validation pass, then fix the plan's steps; rank 0's figures decide for all."""
        state, plan = loop.state, loop.plan
        tic = time.perf_counter()
        if loop.valid_rows and plan.eval_every < plan.steps:
            loop.validation_loss()  # not a scheduled evaluation: only its duration counts
        eval_s = time.perf_counter() - tic if loop.valid_rows else 0.0
        step_s = (tic - self.first_done) / (done - 1)
        elapsed = time.perf_counter() - self.started
        steps = steps_in_budget(plan.time_budget_s, self.spent + elapsed, step_s, eval_s, plan.eval_every or 1,
                                state.step, plan.steps)  # fmt: skip
        if loop.world.several:
            steps = int(loop.all_reduce_sum([float(steps) if loop.world.is_writer else 0.0])[0])
        loop.plan = replace(
            plan, steps=steps, eval_every=min(plan.eval_every or steps, steps),
            pace=(state.tokens - self.start_tokens) / max(elapsed, 1e-9),
            pace_from=f"{loop.run_dir.id}'s first {state.step} steps",
            notes=[n for n in plan.notes if not n.startswith("time:")],  # describe() now prints the pace
        )  # fmt: skip
        if loop.world.is_writer:
            write_plan(loop.run_dir.path, loop.plan)
            loop.run_dir.write_spec(apply_plan(loop.run_dir.read_spec(), loop.plan))
        loop.eval_every = loop.plan.eval_every
        loop.emit(Log(
            f"time: steps {self.start_step + 2}-{state.step} took {step_s:.1f} s each, a validation "
            f"{eval_s:.1f} s: the {fmt_duration(plan.time_budget_s)} budget holds {steps} steps "
            f"(of {plan.steps} planned)"
        ))  # fmt: skip
