"""Training rows, framework-free: tokenized examples packed padding-free, one seeded order for every
backend, and micro-batches as plain numpy arrays (each backend turns them into its own tensors)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localft.data.chat_tokens import IGNORE, TokenizedExample, read_jsonl, tokenize_row
from localft.errors import DataError

# Unpacked examples are sorted by length inside windows of this many, so neighbours in a
# micro-batch have similar lengths (little padding) while the epoch order stays random.
LENGTH_GROUP_WINDOW = 64


@dataclass(frozen=True)
class Row:
    """One sequence of a micro-batch: one example, or several packed, each with positions restarting
    at 0. `labels` line up with `input_ids` (IGNORE where a token is not trained; the loss predicts
    token i from the tokens before it), and the first token of every example is never trained."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    position_ids: tuple[int, ...]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class Batch:
    """A right-padded micro-batch. Padding gets its own run of positions starting at 0, so it is a
    separate (ignored) sequence and no attention mask is needed."""

    input_ids: np.ndarray  # (B, T) int64
    labels: np.ndarray  # (B, T) int64, IGNORE where no loss is taken
    position_ids: np.ndarray  # (B, T) int64
    real_tokens: int  # non-padding tokens
    packed: bool = False  # some row holds several examples (attention must keep them apart)

    @property
    def trained_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())

    def segments(self) -> np.ndarray:
        """(B, T) example number of each position (every position 0 opens a new one): attention
        stays inside a segment."""
        return np.cumsum(self.position_ids == 0, axis=1).astype(np.int32)


def usable(example: TokenizedExample) -> bool:
    """An example teaches something when a token after its first is trained."""
    return len(example.input_ids) > 1 and any(x != IGNORE for x in example.labels[1:])


def tokenize_split(tokenizer, path: Path, max_len: int, train_on: str) -> list[TokenizedExample]:
    """Every usable example of a JSONL split (a missing file is an empty split)."""
    if not Path(path).is_file():
        return []
    examples = [tokenize_row(tokenizer, row, max_len, train_on) for row in read_jsonl(path)]
    return [ex for ex in examples if usable(ex)]


def _row(examples: list[TokenizedExample]) -> Row:
    ids: list[int] = []
    labels: list[int] = []
    pos: list[int] = []
    for ex in examples:
        ids += ex.input_ids
        labels += [IGNORE, *ex.labels[1:]]  # nothing predicts an example's first token
        pos += range(len(ex.input_ids))
    return Row(tuple(ids), tuple(labels), tuple(pos))


def first_fit_decreasing(lengths: list[int], max_len: int) -> list[list[int]]:
    """Indices of `lengths` binned first-fit-decreasing into rows of at most `max_len` tokens (the
    one packing rule: training packs with it, and the plan counts an epoch's rows with it)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        slot = next((b for b, room in enumerate(free) if room >= n), None)
        if slot is None:
            bins.append([i])
            free.append(max_len - n)
        else:
            bins[slot].append(i)
            free[slot] -= n
    return bins


def pack_examples(examples: list[TokenizedExample], max_len: int) -> list[Row]:
    """Examples packed into rows of at most `max_len` tokens; inside a row the examples keep the
    order they were given in."""
    bins = first_fit_decreasing([len(ex.input_ids) for ex in examples], max_len)
    return [_row([examples[i] for i in sorted(members)]) for members in bins]


def epoch_rows(
    examples: list[TokenizedExample], max_len: int, packing: bool, seed: int, epoch: int
) -> list[Row]:
    """The rows of one epoch in training order: a pure function of (seed, epoch), the same for
    every backend."""
    rng = random.Random(seed * 1_000_003 + epoch)
    shuffled = list(examples)
    rng.shuffle(shuffled)
    if packing:
        rows = pack_examples(shuffled, max_len)
        rng.shuffle(rows)
        return rows
    ordered: list[TokenizedExample] = []
    for start in range(0, len(shuffled), LENGTH_GROUP_WINDOW):
        ordered += sorted(shuffled[start : start + LENGTH_GROUP_WINDOW], key=lambda ex: len(ex.input_ids))
    return [_row([ex]) for ex in ordered]


def eval_rows(examples: list[TokenizedExample], max_len: int, packing: bool) -> list[Row]:
    """Validation rows in a fixed order, packed the same way as training (built once per run)."""
    return pack_examples(examples, max_len) if packing else [_row([ex]) for ex in examples]


class RowStream:
    """Endless rows, epoch after epoch. `position` (rows consumed since the start) is the data
    position a checkpoint saves; it does not depend on the micro-batch size, so out-of-memory
    halving can change that mid-run and a stream built at a position continues with the next row."""

    def __init__(self, examples, max_len: int, packing: bool, seed: int, position: int = 0):
        if not examples:
            raise DataError("the training split has no usable examples; check data/train.jsonl")
        self.examples, self.max_len, self.packing, self.seed = examples, max_len, packing, seed
        self.position, self.epoch, self._rows, self._index = 0, 0, [], 0
        self._load_epoch(0)
        while position - self.position >= len(self._rows):
            self.position += len(self._rows)
            self._load_epoch(self.epoch + 1)
        self._index = position - self.position
        self.position = position

    def _load_epoch(self, epoch: int) -> None:
        self.epoch, self._index = epoch, 0
        self._rows = epoch_rows(self.examples, self.max_len, self.packing, self.seed, epoch)

    @property
    def rows_per_epoch(self) -> int:
        return len(self._rows)

    def take(self, n: int) -> list[Row]:
        out = []
        for _ in range(n):
            if self._index >= len(self._rows):
                self._load_epoch(self.epoch + 1)
            out.append(self._rows[self._index])
            self._index += 1
            self.position += 1
        return out


def collate(rows: list[Row], pad_id: int, pad_multiple: int = 1) -> Batch:
    """Right-padded arrays for a micro-batch; the width is rounded up to `pad_multiple` (a compiled
    step sees fewer shapes)."""
    longest = max(len(r) for r in rows)
    width = pad_multiple * -(-longest // pad_multiple)
    ids = np.full((len(rows), width), pad_id, np.int64)
    labels = np.full((len(rows), width), IGNORE, np.int64)
    pos = np.tile(np.arange(width, dtype=np.int64), (len(rows), 1))
    for b, r in enumerate(rows):
        n = len(r)
        ids[b, :n] = r.input_ids
        labels[b, :n] = r.labels
        pos[b, :n] = r.position_ids
        pos[b, n:] = np.arange(width - n)
    packed = any(r.position_ids.count(0) > 1 for r in rows)
    return Batch(ids, labels, pos, sum(len(r) for r in rows), packed)
