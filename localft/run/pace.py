"""The pace an earlier run measured here: what `--time` sizes a new run's steps with."""

from __future__ import annotations

from dataclasses import dataclass

from localft.events import read_events
from localft.run.folder import RunDir, list_runs
from localft.run.state import fold


@dataclass(frozen=True)
class Pace:
    tok_per_s: float
    run_id: str  # the run that measured it, and how, as a plan names it


def measured_pace(model: str, backend: str, device: str, params=None, drafting: bool = False) -> Pace | None:
    """Trained tokens/s (over wall time) of the newest earlier run of `model` on this backend and
    device here; without one, of another model's newest run there, scaled by parameter count
    (`params(name)` -> parameters, or None when unknown): compute per token grows with the size.
    `drafting`: only grpo rounds' runs, whose wall time includes drafting (an SFT run's pace has
    none of it and would promise a round a fraction of its time); otherwise only the other runs."""
    other = None
    for summary in sorted(list_runs(), key=lambda r: r.id, reverse=True):
        if not summary.step or _drafts(summary.path) != drafting:
            continue
        state = fold(read_events(RunDir(summary.path).events_path))
        pace = state.pace()
        if (state.backend, state.device) != (backend, device) or not pace:
            continue
        if summary.model == model:
            return Pace(pace, summary.id)
        other = other or (pace, summary)
    if other is None or params is None:
        return None
    theirs, ours = params(other[1].model), params(model)
    if not (theirs and ours):
        return None
    return Pace(other[0] * theirs / ours, f"{other[1].id}, {other[1].model} scaled to this model's size")


def _drafts(path) -> bool:
    try:
        return RunDir(path).read_spec().method == "grpo"
    except Exception:  # a run folder whose spec no longer reads measures nothing for a plan
        return False
