"""A preference round after a finished run (`localft train --method dpo --from RUN`, the Chat
screen's "Train on feedback"): a new run that continues from the run's adapter, on pairs from the
chat's feedback, the run's own drafts (`--pairs self`), a JSONL file or a dataset; or a
reinforcement round (`--method grpo`) on the run's training requests, drafted and scored in the loop."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from localft.config import TrainSpec, merge_overrides
from localft.data.pairs import Judged, Pair, as_judged, as_pairs, pairs_path, write_preferences
from localft.errors import ConfigError, DataError, RunError
from localft.events import EventSink, Log
from localft.run.folder import RunDir, discard_unstarted, new_run

# A preference round's defaults over the source run's settings: a smaller learning rate than SFT
# (the policy starts where SFT left it and should move little), one pass, validation to stop early.
ROUND_DEFAULTS = {"learning_rate": 5e-5, "epochs": 1.0, "steps": None, "time_budget_min": None,
                  "warmup_steps": 2, "early_stopping_patience": 3}  # fmt: skip
HOLD_OUT_EVERY = 10  # every 10th pair of the feedback is held out for the validation loss
PAIR_SPLITS = ("train", "valid")
ROUND_UNITS = {"kto": "examples", "grpo": "requests"}


def round_spec(source: RunDir, method: str, pairs: str | None, overrides: dict | None = None) -> TrainSpec:
    """The source run's settings (model, LoRA shape, sequence length) with the round's defaults,
    its adapter to start from, then what the user set."""
    # A LoRA adapter (or MLX's full weights, in its layout), or torch's full fine-tuning: an HF folder.
    if not any((source.adapter_dir / name).is_file() for name in ("adapter_config.json", "config.json")):
        raise RunError(
            f"run {source.id} has no adapter yet; let it finish (or `localft runs resume {source.id}`)"
        )
    spec = source.read_spec()
    if method == "grpo" and pairs:
        raise ConfigError("a grpo round drafts its own completions of the run's requests: leave out --pairs")
    update = {**ROUND_DEFAULTS, "method": method, "pairs": None if method == "grpo" else pairs or "feedback",
              "start_adapter": str(source.adapter_dir.resolve())}  # fmt: skip
    return merge_overrides(spec, {**update, **(overrides or {})})


def collect_pairs(
    source: RunDir,
    run: RunDir,
    spec: TrainSpec,
    progress: Callable[[str, int, int], None] | None = None,
    limit: int | None = None,
) -> dict[str, int]:
    """Write run/data/pairs-{train,valid}.jsonl for the round (judged completions for KTO, pairs for
    the others); returns the count per split."""
    from localft.chat.feedback import feedback_path, read_feedback
    from localft.run.export import training_system_prompt

    where = spec.pairs or "feedback"
    if where == "self":
        from localft.data.self_pairs import build_self_pairs

        build_self_pairs(source, run, progress=progress or (lambda *a: None), limit=limit)
        splits = {s: _read(pairs_path(run, s)) for s in PAIR_SPLITS}
    else:
        if where == "feedback":
            rows = read_feedback(feedback_path(source.path))
            if not rows:
                raise DataError(
                    f"run {source.id} has no feedback yet; rate replies in `localft chat {source.id}`, "
                    "or use --pairs self"
                )
        elif Path(where).expanduser().is_file():
            from localft.data.pairs import read_preferences

            rows = read_preferences(Path(where).expanduser(), training_system_prompt(source))
        else:
            from localft.data.pairs import parse_columns, read_hf_preferences

            rows = read_hf_preferences(
                where, parse_columns(spec.pair_columns), training_system_prompt(source)
            )
        held = len(rows) >= HOLD_OUT_EVERY
        splits = {
            "train": [
                r for i, r in enumerate(rows) if not (held and i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1)
            ],
            "valid": [r for i, r in enumerate(rows) if held and i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1],
        }
    counts = {}
    for split, rows in splits.items():
        kept: list[Pair | Judged] = list(as_judged(rows) if spec.method == "kto" else as_pairs(rows))
        write_preferences(pairs_path(run, split), kept)
        counts[split] = len(kept)
    if not counts["train"]:
        what = (
            "good/bad marks or pairs"
            if spec.method == "kto"
            else "pairs (a pick, an edit, or a good and a bad mark of one request)"
        )
        raise DataError(f"no {what} to train {spec.method} on; collect some in the chat or use --pairs self")
    return counts


def count_requests(run: RunDir, split_name: str = "train") -> int:
    """A grpo round's requests (chat rows of a copied split); no training request is a user
    error, no held-out one only means no held-out reward while it trains."""
    from localft.data.chat_tokens import read_jsonl

    split = run.split_path(split_name)
    n = sum(1 for r in read_jsonl(split) if "messages" in r) if split.is_file() else 0
    if not n and split_name == "train":
        raise DataError(f"no chat requests in {split} to draft completions of; a grpo round needs a chat run")
    return n


def _read(path: Path) -> list:
    from localft.data.pairs import read_preferences

    return read_preferences(path) if path.is_file() and path.stat().st_size else []


def prepare_round(
    source: RunDir,
    method: str = "dpo",
    pairs: str | None = None,
    overrides: dict | None = None,
    name: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    machine=None,
    limit: int | None = None,
) -> RunDir:
    """Create the round's run: refuse what cannot fit before writing anything, copy the source's
    splits (evaluation and later rounds read them), collect the pairs, plan on them. A failure
    leaves no run behind."""
    from localft.plan.hardware import this_machine
    from localft.plan.planner import check_plan, describe, plan, plan_run

    machine = machine or this_machine()
    spec = round_spec(source, method, pairs, overrides)
    first = check_plan(plan(spec, machine))
    run = new_run(spec.model_copy(update={"backend": first.backend}), name=name)
    try:
        run.data_dir.mkdir(parents=True, exist_ok=True)
        for f in source.data_dir.glob("*.json*"):
            if not f.name.startswith("pairs-"):
                shutil.copy2(f, run.data_dir / f.name)
        if spec.method == "grpo":  # requests instead of pairs: the source's training prompts, copied above
            counts = {"train": count_requests(run), "valid": count_requests(run, "valid")}
        else:
            counts = collect_pairs(source, run, spec, progress, limit)  # limit: requests per split (self)
        p = plan_run(run, machine)
    except BaseException:
        discard_unstarted(run)
        raise
    with EventSink(run.events_path) as sink:
        sink(Log(f"{spec.method} round from run {source.id}: {counts['train']} training and "
                 f"{counts['valid']} held-out {ROUND_UNITS.get(spec.method, 'pairs')}"))  # fmt: skip
        for line in describe(p):
            sink(Log(f"plan: {line}"))
    return run
