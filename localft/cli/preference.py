"""`localft train --method dpo --from RUN [--pairs self|feedback|FILE|DATASET]`: a preference
round on a finished run, through localft.train.preference_round (what the dashboard calls too);
`--method grpo --from RUN`, a reinforcement round on the run's own requests."""

from __future__ import annotations

from pathlib import Path

from localft.errors import ConfigError


def preference_round_command(
    from_run: str | None,
    data: list[Path] | None,
    options: dict,
    sets: list[str],
    name: str | None,
    detach: bool,
    plan_only: bool,
) -> None:
    from localft.cli.run_options import follow_started_run, parse_sets, print_plan
    from localft.plan.planner import check_plan, plan
    from localft.run import runner
    from localft.run.folder import discard_unstarted, open_run
    from localft.train.preference_round import prepare_round, round_spec

    if data:
        raise ConfigError(
            "a preference round takes its pairs from --pairs (self, feedback, a file or a dataset), not DATA"
        )
    if not from_run:
        raise ConfigError(f"--method {options.get('method')} continues a finished run: add --from RUN")
    source = open_run(from_run)
    method, pairs = options.pop("method") or "dpo", options.pop("pairs")
    overrides = {**{k: v for k, v in options.items() if v is not None}, **parse_sets(sets)}
    if method == "grpo":  # its rewards load now, not after the worker has loaded the model
        from localft.eval.rewards import check_rewards

        check_rewards(round_spec(source, method, pairs, overrides))
    if plan_only:
        p = plan(round_spec(source, method, pairs, overrides))
        print_plan(p)
        check_plan(p)
        return

    from localft.cli.progress import stage_bars
    from localft.events import Stage

    with stage_bars() as emit:  # `--pairs self`: run source's GGUF drafts each request
        run = prepare_round(
            source, method, pairs, overrides, name=name,
            progress=lambda split, done, total: emit(Stage("draft", done, total, f"{split} requests, run {source.id}'s GGUF")),
        )  # fmt: skip
    try:
        runner.start_worker(run)
    except BaseException:
        discard_unstarted(run)
        raise
    follow_started_run(run, f"run {run.id} started ({method} from {source.id}): {run.path}", detach)
