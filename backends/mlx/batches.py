"""Training rows for the MLX loop: tokenized examples, packed padding-free, streamed in an order that
depends only on (seed, epoch), so a resumed run sees the same micro-batches from its saved position."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localft.data.chat_tokens import IGNORE, TokenizedExample, read_jsonl, tokenize_row
from localft.errors import DataError

# Unpacked examples are sorted by length inside windows of this many rows, so a micro-batch holds
# examples of similar length (little padding) while the epoch order stays random.
LENGTH_WINDOW = 64
# Micro-batch widths are rounded up to a multiple of this, so the compiled step sees few shapes.
PAD_MULTIPLE = 32


@dataclass(frozen=True)
class Row:
    """Model inputs and next-token targets, already shifted; `segments` numbers the examples packed
    into the row (attention never crosses a segment boundary)."""

    inputs: np.ndarray
    targets: np.ndarray
    segments: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class Batch:
    inputs: np.ndarray  # (B, T) int32
    targets: np.ndarray  # (B, T) int32, IGNORE where no loss is taken
    segments: np.ndarray  # (B, T) int32; padding is a segment of its own
    real_tokens: int  # non-padding input tokens

    @property
    def trained_tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


def tokenize_split(tokenizer, path: Path, max_len: int, train_on: str) -> list[TokenizedExample]:
    """Usable examples of a JSONL split (a missing file is an empty split). `max_len` + 1 tokens are
    kept because the shift to next-token targets drops one."""
    if not Path(path).is_file():
        return []
    examples = [tokenize_row(tokenizer, row, max_len + 1, train_on) for row in read_jsonl(path)]
    return [ex for ex in examples if len(ex.input_ids) > 1 and any(x != IGNORE for x in ex.labels[1:])]


def _row(examples: list[TokenizedExample]) -> Row:
    inputs, targets, segments = [], [], []
    for k, ex in enumerate(examples):
        inputs += ex.input_ids[:-1]
        targets += ex.labels[1:]
        segments += [k] * (len(ex.input_ids) - 1)
    return Row(np.array(inputs, np.int32), np.array(targets, np.int32), np.array(segments, np.int32))


def pack_rows(examples: list[TokenizedExample], max_len: int) -> list[Row]:
    """First-fit-decreasing packing into rows of at most `max_len` input tokens."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(examples[i].input_ids) - 1
        slot = next((b for b, free in enumerate(room) if free >= n), None)
        if slot is None:
            bins.append([i])
            room.append(max_len - n)
        else:
            bins[slot].append(i)
            room[slot] -= n
    return [_row([examples[i] for i in sorted(members)]) for members in bins]


def epoch_rows(
    examples: list[TokenizedExample], max_len: int, packing: bool, seed: int, epoch: int
) -> list[Row]:
    """The rows of one epoch in training order: a pure function of (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    shuffled = [examples[i] for i in rng.permutation(len(examples))]
    if packing:
        rows = pack_rows(shuffled, max_len)
        return [rows[i] for i in rng.permutation(len(rows))]
    ordered: list[TokenizedExample] = []
    for start in range(0, len(shuffled), LENGTH_WINDOW):
        ordered += sorted(shuffled[start : start + LENGTH_WINDOW], key=lambda ex: len(ex.input_ids))
    return [_row([ex]) for ex in ordered]


def eval_rows(examples: list[TokenizedExample], max_len: int, packing: bool) -> list[Row]:
    """Validation rows in a fixed order, packed the same way as training."""
    return pack_rows(examples, max_len) if packing else [_row([ex]) for ex in examples]


def collate(rows: list[Row], pad_id: int = 0) -> Batch:
    """Right-padded arrays for a micro-batch; padding targets are IGNORE and form their own segment."""
    longest = max(len(r) for r in rows)
    width = PAD_MULTIPLE * -(-longest // PAD_MULTIPLE)
    inputs = np.full((len(rows), width), pad_id, np.int32)
    targets = np.full((len(rows), width), IGNORE, np.int32)
    segments = np.full((len(rows), width), np.iinfo(np.int32).max, np.int32)
    for b, r in enumerate(rows):
        inputs[b, : len(r)] = r.inputs
        targets[b, : len(r)] = r.targets
        segments[b, : len(r)] = r.segments
    return Batch(inputs, targets, segments, sum(len(r) for r in rows))


class RowStream:
    """Endless rows, epoch after epoch. `position` (rows consumed since the start) is the data
    position a checkpoint saves; a stream built with it continues with the very next row."""

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

    def take(self, n: int) -> list[Row]:
        out = []
        for _ in range(n):
            if self._index >= len(self._rows):
                self._load_epoch(self.epoch + 1)
            out.append(self._rows[self._index])
            self._index += 1
            self.position += 1
        return out
