"""What `localft train` and a round (`--from RUN`) share: `--set` pairs, `--time`, the printed
plan, and following a started run to its end."""

from __future__ import annotations

import json

from localft.config import TrainSpec, load_preset, merge_overrides
from localft.errors import ConfigError, RunError


def parse_sets(pairs: list[str]) -> dict:
    """`key=value` pairs (dotted keys for lora./data.) into a nested overrides dict; values are
    read as JSON when they parse (numbers, true/false, lists), else as strings."""
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def build_train_spec(preset: str | None, options: dict, sets: list[str]) -> TrainSpec:
    spec = load_preset(preset) if preset else TrainSpec()
    given = {k: v for k, v in options.items() if v is not None}
    return merge_overrides(spec, {**given, **parse_sets(sets)})


def parse_minutes(text: str | None) -> float | None:
    """A time budget as minutes: "15m", "1h30m", "90s", or a bare number of minutes."""
    if text is None:
        return None
    import re

    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*", text)
    if text.strip().replace(".", "", 1).isdigit():
        minutes = float(text)
    elif parts and any(parts.groups()):
        h, m, sec = (float(g) if g else 0.0 for g in parts.groups())
        minutes = h * 60 + m + sec / 60
    else:
        raise ConfigError(f"--time expects a duration like 15m, 1h30m or 90s, got {text!r}")
    if minutes <= 0:
        raise ConfigError(f"--time must be more than zero, got {text!r}")
    return minutes


def print_plan(p) -> None:
    from localft.plan.planner import describe

    print("\n".join(f"plan: {line}" for line in describe(p)))


def follow_started_run(run, started: str, detach: bool) -> None:
    """Say the run started and its plan; unless detached, follow it to the end (a failure is a
    RunError) and name the adapter and the next command."""
    from localft.cli.progress import watch_run
    from localft.plan.planner import read_plan

    print(started)
    print_plan(read_plan(run.path))
    if detach:
        return
    finished = watch_run(run)
    if finished.status == "failed":
        raise RunError(finished.error or "training failed")
    print(f"adapter: {run.adapter_dir}\nnext: localft export {run.id} --quant Q4_K_M")
