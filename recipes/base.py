"""What a recipe is: a name, a summary, its inputs, and its defaults as TrainSpec/ExportSpec overrides.

A recipe changes behaviour by passing data and functions in, never by subclassing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from localft.events import Emit
from localft.runs import RunDir

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
    task: Literal["style", "json"]  # which evaluation figures the report leads with
    # Extra TrainSpec overrides where training runs on a plain CPU: fewer, shorter steps.
    cpu_defaults: dict = field(default_factory=dict)
    export_defaults: dict = field(default_factory=dict)  # ExportSpec overrides
    # Catalog models to try on a GPU, largest first; the first that fits is chosen.
    model_ladder: tuple[str, ...] = ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-360m", "embedded")
    prepare_data: PrepareData | None = None
    eval_samples: int = 8
    eval_max_tokens: int = 120
    min_examples: int = 20  # fewer usable examples than this is refused before training
