"""Training rows for the torch loop: tokenize JSONL splits, pack examples padding-free, and stream
micro-batches whose order depends only on the seed, so a resumed run sees the same rows."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from localft.data.chat_tokens import IGNORE, TokenizedExample, read_jsonl, tokenize_row
from localft.errors import DataError

# Non-packed examples are sorted by length inside windows of this many, so neighbours in a
# micro-batch have similar lengths (little padding) while the epoch order stays random.
LENGTH_GROUP_WINDOW = 64


@dataclass(frozen=True)
class Row:
    """One sequence of a micro-batch: one example, or several packed with restarting positions."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def tokenize_split(tokenizer, path: Path, max_len: int, train_on: str) -> list[TokenizedExample]:
    """Every usable example of a JSONL split; examples with nothing to learn from are dropped."""
    if not Path(path).is_file():
        return []
    examples = [tokenize_row(tokenizer, row, max_len, train_on) for row in read_jsonl(path)]
    return [ex for ex in examples if ex.trained_tokens > 0 and len(ex.input_ids) > 1]


def _single(ex: TokenizedExample) -> Row:
    return Row(list(ex.input_ids), list(ex.labels), list(range(len(ex.input_ids))))


def pack_examples(examples: list[TokenizedExample], max_len: int) -> list[Row]:
    """First-fit-decreasing packing into rows of at most `max_len` tokens. Positions restart at 0
    for each example; transformers reads that as separate sequences (block-diagonal attention)."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = len(examples[i].input_ids)
        slot = next((b for b, room in enumerate(free) if room >= n), None)
        if slot is None:
            bins.append([i])
            free.append(max_len - n)
        else:
            bins[slot].append(i)
            free[slot] -= n
    rows = []
    for members in bins:
        ids, labels, pos = [], [], []
        for i in sorted(members):
            ex = examples[i]
            ids += ex.input_ids
            # The first token of each example is never a target of the previous one.
            labels += [IGNORE] + list(ex.labels[1:])
            pos += range(len(ex.input_ids))
        rows.append(Row(ids, labels, pos))
    return rows


def epoch_rows(
    examples: list[TokenizedExample], max_len: int, packing: bool, seed: int, epoch: int
) -> list[Row]:
    """The rows of one epoch in training order, a pure function of (seed, epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    shuffled = list(examples)
    rng.shuffle(shuffled)
    if packing:
        rows = pack_examples(shuffled, max_len)
        rng.shuffle(rows)
        return rows
    ordered = []
    for start in range(0, len(shuffled), LENGTH_GROUP_WINDOW):
        window = shuffled[start : start + LENGTH_GROUP_WINDOW]
        ordered += sorted(window, key=lambda ex: len(ex.input_ids))
    return [_single(ex) for ex in ordered]


class RowStream:
    """Endless rows, epoch after epoch; `position` (rows consumed) is the resumable data position.
    It does not depend on the micro-batch size, so --auto-batch can halve it mid-run."""

    def __init__(self, examples, max_len: int, packing: bool, seed: int, position: int = 0):
        if not examples:
            raise DataError("the training split has no usable examples; check data/train.jsonl")
        self.examples, self.max_len, self.packing, self.seed = examples, max_len, packing, seed
        self.position = 0
        self._epoch, self._rows, self._index = -1, [], 0
        self._advance_to(position)

    def _load_epoch(self, epoch: int) -> None:
        self._epoch, self._index = epoch, 0
        self._rows = epoch_rows(self.examples, self.max_len, self.packing, self.seed, epoch)

    def _advance_to(self, position: int) -> None:
        self._load_epoch(0)
        while position - self.position >= len(self._rows) - self._index:
            self.position += len(self._rows) - self._index
            self._load_epoch(self._epoch + 1)
        self._index += position - self.position
        self.position = position

    @property
    def epoch(self) -> int:
        return self._epoch

    def take(self, n: int) -> list[Row]:
        out = []
        for _ in range(n):
            if self._index >= len(self._rows):
                self._load_epoch(self._epoch + 1)
            out.append(self._rows[self._index])
            self._index += 1
            self.position += 1
        return out


def eval_rows(examples: list[TokenizedExample], max_len: int, packing: bool) -> list[Row]:
    """Validation rows in a fixed order (packed the same way as training)."""
    return pack_examples(examples, max_len) if packing else [_single(ex) for ex in examples]


def collate(rows: list[Row], pad_id: int):
    """Tensors for a micro-batch, padded on the right. Padding gets its own position run starting
    at 0, so it forms a separate (ignored) sequence and no attention mask is needed."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids, labels, pos = [], [], []
    for r in rows:
        pad = width - len(r.input_ids)
        ids.append(r.input_ids + [pad_id] * pad)
        labels.append(r.labels + [IGNORE] * pad)
        pos.append(r.position_ids + list(range(pad)))
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "position_ids": torch.tensor(pos, dtype=torch.long),
        "real_tokens": sum(len(r.input_ids) for r in rows),
    }
