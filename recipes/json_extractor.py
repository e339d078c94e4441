"""json-extractor: teach a model to answer in one strict JSON shape, learned from examples.

Input: a JSONL file of {"input": text, "output": {...}} rows (also "text"/"json" keys).
"""

from __future__ import annotations

import json
from pathlib import Path

from localft.errors import DataError
from localft.events import Emit, Stage
from localft.recipes.base import Recipe, RecipeInput, holdout_split, write_splits
from localft.run.folder import RunDir


def read_examples(source: Path) -> list[tuple[str, dict]]:
    """(input text, output object) pairs; a row that is not one is an error naming its line."""
    try:
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {source}: {exc}; give a JSONL file of input/output rows") from None
    pairs = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DataError(f"{source}:{n} is not JSON; each line must be an object") from None
        text, out = row.get("input", row.get("text")), row.get("output", row.get("json"))
        if isinstance(out, str):
            try:
                out = json.loads(out)
            except ValueError:
                out = None
        if not isinstance(text, str) or not isinstance(out, dict):
            raise DataError(f'{source}:{n} needs "input" (text) and "output" (a JSON object)')
        pairs.append((text, out))
    return pairs


def system_prompt(pairs: list[tuple[str, dict]]) -> str:
    keys = sorted({k for _, out in pairs for k in out})
    return (
        "Extract the facts from the user's text. Answer with one JSON object with exactly the keys "
        f"{', '.join(keys)}, and nothing else."
    )


def prepare_data(source: Path, run: RunDir, emit: Emit) -> None:
    """Write the chat splits: the answer is the compact JSON of each example's output."""
    spec = run.read_spec().data
    pairs = read_examples(source)
    emit(Stage("import", 0, 1, f"{len(pairs)} examples from {Path(source).name}"))
    system = system_prompt(pairs)
    rows = [
        {"messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
            {"role": "assistant", "content": json.dumps(out, ensure_ascii=False)},
        ]}
        for text, out in pairs
    ]  # fmt: skip
    splits = holdout_split(rows, spec.seed, spec.valid_fraction, spec.test_fraction)
    write_splits(run, splits, {"source": str(source), "examples": len(rows)}, emit)


RECIPE = Recipe(
    name="json-extractor",
    summary="Teach a model to answer in a strict JSON shape from input/output examples.",
    inputs=(
        RecipeInput("--from", 'JSONL file of {"input": text, "output": {...}} examples.'),
        RecipeInput("--model", "Base model; default: the largest catalog model that fits.", required=False),
    ),
    task="json",
    train_defaults={
        "max_seq_len": 512, "batch_size": 4, "learning_rate": 2e-4, "epochs": 3, "eval_every": 25,
        "early_stopping_patience": 3, "train_on": "completions",
    },
    cpu_defaults={
        "max_seq_len": 256, "batch_size": 4, "learning_rate": 1e-3, "epochs": 3, "warmup_steps": 3,
        "eval_every": 20, "eval_batches": 2, "save_every": 20,
    },
    prepare_data=prepare_data,
    eval_samples=12,
    eval_max_tokens=60,
)  # fmt: skip
