"""classify: labelled texts (CSV, JSONL or a local HF dataset with `text` and `label`) → a chat model
that answers with exactly one label, as a GGUF; evaluated against the base model prompted few-shot."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from localft.errors import DataError
from localft.eval.classify import CLASSIFY_QUANT
from localft.events import Emit, Stage
from localft.recipes.base import Recipe, RecipeInput, write_splits
from localft.run.folder import RunDir

TEXT_KEYS = ("text", "sentence", "review", "email", "content", "message")
LABEL_KEYS = ("label", "labels", "category", "class")
MAX_LABELS = 50


def _pick(row: dict, keys: tuple[str, ...], preferred: str | None = None):
    for key in (preferred, *keys) if preferred else keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def read_labelled(source: Path, text_column: str | None = None) -> list[tuple[str, str]]:
    """(text, label) pairs from a CSV, a JSONL file or a local HF dataset; labels become strings."""
    source = Path(source)
    label = source.name
    if source.suffix.lower() == ".csv":
        from localft.data.importers.csv_rows import read_csv

        try:
            text = source.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {source}: {exc}; save it as UTF-8 CSV") from None
        rows = [(n, r) for n, r in enumerate(read_csv(text, label), 2)]
    elif source.suffix.lower() in (".jsonl", ".json"):
        rows = []
        try:
            lines = source.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {source}: {exc}; give a JSONL file of text/label rows") from None
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except ValueError:
                    raise DataError(f"{source}:{n} is not JSON; each line must be an object") from None
    else:
        from localft.data.importers.hf import load_rows

        rows = list(enumerate(load_rows(str(source)), 1))
    pairs = []
    for n, row in rows:
        text = _pick(row, TEXT_KEYS, text_column) if isinstance(row, dict) else None
        value = _pick(row, LABEL_KEYS) if isinstance(row, dict) else None
        if isinstance(row, dict) and not any(k in row for k in (text_column, *TEXT_KEYS) if k):
            from localft.data.importers.csv_rows import no_text_column

            raise no_text_column(f"{label} row {n}", list(row), text_column)
        if not isinstance(text, str) or value is None or isinstance(value, (list, dict)):
            raise DataError(f'{label} row {n}: needs a "text" and a "label" (one value); fix or remove it')
        pairs.append((text.strip(), str(value).strip()))
    labels = {lab for _, lab in pairs}
    if len(labels) < 2:
        raise DataError(f"{label} has {len(labels)} distinct label(s); a classifier needs at least two")
    if len(labels) > MAX_LABELS:
        raise DataError(f"{label} has {len(labels)} distinct labels; at most {MAX_LABELS} are supported")
    return pairs


def system_prompt(labels: list[str]) -> str:
    return f"Classify the user's text. Answer with exactly one label: {', '.join(labels)}."


def stratified_split(pairs: list[tuple[str, str]], seed: int, valid: float, test: float) -> dict[str, list]:
    """Each label's examples shuffled and cut in the same proportions, so every split holds each label."""
    by_label: dict[str, list] = defaultdict(list)
    for pair in pairs:
        by_label[pair[1]].append(pair)
    rng = random.Random(seed)
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    for lab in sorted(by_label):
        items = by_label[lab]
        rng.shuffle(items)
        n_test = max(1, round(len(items) * test)) if len(items) > 2 else 0
        n_valid = max(1, round(len(items) * valid)) if len(items) > 3 else 0
        splits["test"] += items[:n_test]
        splits["valid"] += items[n_test : n_test + n_valid]
        splits["train"] += items[n_test + n_valid :]
    for part in splits.values():
        rng.shuffle(part)
    return splits


def chat_row(system: str, text: str, label: str) -> dict:
    return {"messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": text},
        {"role": "assistant", "content": label},
    ]}  # fmt: skip


def prepare_data(source: Path, run: RunDir, emit: Emit) -> None:
    """Write the chat splits (the answer is the label) and the label set in data/report.json."""
    spec = run.read_spec().data
    pairs = read_labelled(source, spec.text_column)
    labels = sorted({lab for _, lab in pairs})
    emit(Stage("import", 0, 1, f"{len(pairs)} examples, {len(labels)} labels from {Path(source).name}"))
    system = system_prompt(labels)
    splits = stratified_split(pairs, spec.seed, spec.valid_fraction, spec.test_fraction)
    rows = {name: [chat_row(system, t, lab) for t, lab in part] for name, part in splits.items()}
    per_label = {lab: sum(1 for _, x in pairs if x == lab) for lab in labels}
    report = {"source": str(source), "examples": len(pairs), "labels": labels, "per_label": per_label,
              "system_prompt": system}  # fmt: skip
    write_splits(run, rows, report, emit)


RECIPE = Recipe(
    name="classify",
    summary="Teach a model to answer with one label per text (sentiment, spam, topic), compared with few-shot prompting.",
    inputs=(
        RecipeInput("--from", "CSV, JSONL or local HF dataset with text and label columns."),
        RecipeInput("--model", "Base model; default: the largest catalog model that fits.", required=False),
    ),
    task="classify",
    # The loss falls on the label tokens only (completions): a few hundred examples teach the label
    # set in a few epochs.
    train_defaults={
        "max_seq_len": 512, "batch_size": 8, "learning_rate": 2e-4, "epochs": 3, "eval_every": 25,
        "early_stopping_patience": 3, "train_on": "completions",
        "data": {"valid_fraction": 0.1, "test_fraction": 0.2},
    },
    cpu_defaults={
        "max_seq_len": 256, "batch_size": 4, "learning_rate": 1e-3, "epochs": 3, "warmup_steps": 3,
        "eval_every": 10, "eval_batches": 2, "save_every": 20,
    },
    export_defaults={"quants": [CLASSIFY_QUANT], "verify": False, "ollama": True},
    prepare_data=prepare_data,
    eval_samples=64,  # test texts classified per model
)  # fmt: skip
