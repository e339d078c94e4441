"""One training attempt: the loop for the spec's method (SFT, preference, classification head),
set up and run. The base loop never knows its subclasses; this module picks one."""

from __future__ import annotations

from collections.abc import Callable

from localft.errors import ConfigError, DoesNotFit
from localft.events import Emit
from localft.plan.planner import Plan
from localft.run.folder import RunDir
from localft.train.head_loop import HeadLoop
from localft.train.loop import Loop
from localft.train.preference_loop import PreferenceLoop
from localft.train.reinforce_loop import ReinforceLoop
from localft.train.session import OutOfMemory
from localft.train.watchdog import CollectiveWatch
from localft.train.world import World, several_process_blocker


def train(
    run: RunDir,
    plan: Plan,
    emit: Emit,
    stop: Callable[[], bool],
    backend=None,
    stalled: Callable[[str], None] | None = None,
    scorer=None,
) -> None:
    """Train `run` as `plan` says on the plan's backend (or `backend`, a Backend object). One rank
    of several passes `stalled(why)`, which ends the process, for a rank that stops progressing. A
    grpo run needs `scorer` (localft.train.reinforce_loop.DraftScorer), which run/ builds."""
    from localft.backends import get_backend

    loop_class, spec = Loop, run.read_spec()
    blocker = several_process_blocker(spec.method, spec.head) if plan.world_size > 1 else None
    if blocker:
        raise ConfigError(blocker)
    if spec.method == "grpo":
        loop_class = ReinforceLoop
    elif spec.method != "sft":
        loop_class = PreferenceLoop
    elif spec.head:
        loop_class = HeadLoop
    loop = loop_class(run, plan, emit, stop, backend or get_backend(plan.backend))
    loop.scorer = scorer
    if plan.world_size > 1 and stalled is not None:
        loop.watch = CollectiveWatch(World.from_env(), spec.collective_timeout_s, stalled)
    try:
        loop.setup()
        loop.run()
    except OutOfMemory as exc:  # outside a training step (evaluation): nothing to halve
        raise DoesNotFit(
            f"out of memory ({exc}); lower --batch-size or --max-seq-len, or use --gradient-checkpointing"
        ) from None
    finally:
        if loop.watch is not None:
            loop.watch.close()
