"""What a recipe is: a name, a summary, its inputs, and its defaults as TrainSpec/ExportSpec overrides;
and the held-out split its importer writes.

A recipe changes behaviour by passing data and functions in, never by subclassing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from localft.events import Emit
from localft.run.folder import RunDir

# Writes run/data/{train,valid,test}.jsonl from the recipe's input; None = the generic importer.
PrepareData = Callable[[Path, RunDir, Emit], None]


@dataclass(frozen=True)
class RecipeInput:
    name: str  # the CLI option, e.g. "--from"
    help: str
    required: bool = True


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    inputs: tuple[RecipeInput, ...]
    train_defaults: dict  # TrainSpec overrides for every machine
    task: Literal["style", "json", "classify", "domain"]  # which evaluation figures the report leads with
    # Extra TrainSpec overrides where training runs on a plain CPU: fewer, shorter steps.
    cpu_defaults: dict = field(default_factory=dict)
    export_defaults: dict = field(default_factory=dict)  # ExportSpec overrides
    # Catalog models to try on a GPU, largest first; the first that fits is chosen.
    model_ladder: tuple[str, ...] = ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-360m", "embedded")
    prepare_data: PrepareData | None = None
    eval_samples: int = 8
    eval_max_tokens: int = 120
    min_examples: int = 20  # fewer usable examples than this is refused before training


def holdout_split(rows: list, seed: int, valid_fraction: float, test_fraction: float) -> dict[str, list]:
    """Rows shuffled with `seed`, then cut into test, valid and train (at least one held-out row each)."""
    import random

    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n_test = max(1, round(len(rows) * test_fraction))
    n_valid = max(1, round(len(rows) * valid_fraction))
    return {
        "test": rows[:n_test],
        "valid": rows[n_test : n_test + n_valid],
        "train": rows[n_test + n_valid :],
    }


def write_splits(run: RunDir, splits: dict[str, list[dict]], report: dict, emit: Emit) -> dict[str, int]:
    """Each split as the run's JSONL, `report` (plus the counts) as data/report.json; the counts."""
    import json

    from localft.atomic import atomic_write_json, atomic_write_text
    from localft.events import Stage

    for name, part in splits.items():
        atomic_write_text(
            run.split_path(name), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
        )
    counts = {name: len(part) for name, part in splits.items()}
    atomic_write_json(run.data_dir / "report.json", {**report, "splits": counts})
    emit(Stage("import", 1, 1, ", ".join(f"{k} {v}" for k, v in counts.items())))
    return counts
