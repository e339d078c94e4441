"""The training loop for a classification head (`--head`): the core loop (seeded order, accumulation,
out-of-memory halving, checkpoints, early stopping, stops) over (text, label id) examples; the
session's loss is cross-entropy over the labels of each text's last token, pooled by the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localft.data.chat_tokens import read_jsonl
from localft.errors import DataError
from localft.events import Log

from .loop import Loop
from .preference_loop import ExampleStream, Item
from .state import step_seed


@dataclass(frozen=True)
class LabelledText:
    input_ids: tuple[int, ...]
    label: int  # index into the run's label set


@dataclass(frozen=True)
class LabelBatch:
    """Right-padded texts with their attention mask, and each text's label id (numpy arrays)."""

    input_ids: np.ndarray  # (B, T) int64
    attention_mask: np.ndarray  # (B, T) int64, 0 on padding
    labels: np.ndarray  # (B,) int64


def label_batch(texts: list[LabelledText], pad_id: int) -> LabelBatch:
    width = max(len(t.input_ids) for t in texts)
    ids = np.full((len(texts), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for i, t in enumerate(texts):
        ids[i, : len(t.input_ids)] = t.input_ids
        mask[i, : len(t.input_ids)] = 1
    return LabelBatch(ids, mask, np.asarray([t.label for t in texts], dtype=np.int64))


def labelled_texts(tokenizer, path: Path, labels: list[str], max_len: int) -> list[LabelledText]:
    """The classify recipe's chat rows of a split as (the user's text, its label's index)."""
    from localft.eval.classify import text_and_label

    if not Path(path).is_file():
        return []
    out = []
    for row in read_jsonl(path):
        text, label = text_and_label(row)
        ids = tokenizer(text, truncation=True, max_length=max_len)["input_ids"]
        if ids and label in labels:
            out.append(LabelledText(tuple(ids), labels.index(label)))
    return out


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy of its label under `logits` (N, L), in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


class TextStream(ExampleStream):
    """Texts in the preference loop's seeded order: one item per text, counted as one trained unit."""

    def __init__(self, texts: list[LabelledText], seed: int, position: int = 0) -> None:
        self.items = [Item(i, 1, len(t.input_ids)) for i, t in enumerate(texts)]
        self.seed, self.position = seed, position


class HeadBackend:
    """The run's backend asked for a classification session: the core loop calls `load()` as for
    any run; a backend without `load_classifier` (MLX) refuses with one line."""

    def __init__(self, backend, loop: HeadLoop) -> None:
        self.backend, self.loop = backend, loop

    def load(self, request):
        from localft.backends import HEAD_ON_TORCH
        from localft.errors import BackendUnavailable

        load = getattr(self.backend, "load_classifier", None)
        if load is None:
            raise BackendUnavailable(HEAD_ON_TORCH)
        return load(request, self.loop.labels, self.loop.pad_id)


class HeadLoop(Loop):
    """LoRA plus a sequence-classification head on the classify recipe's labelled texts."""

    def __init__(self, run, plan, emit, stop, backend) -> None:
        super().__init__(run, plan, emit, stop, HeadBackend(backend, self))

    def prepare_data(self, tokenizer) -> None:
        from localft.eval.classify import run_labels

        self.labels = run_labels(self.run_dir)
        self.texts = {
            split: labelled_texts(
                tokenizer, self.run_dir.split_path(split), self.labels, self.plan.max_seq_len
            )
            for split in ("train", "valid")
        }
        if not self.texts["train"]:
            raise DataError(
                f"run {self.run_dir.id} has no labelled training texts; import them with the classify recipe"
            )
        self.valid_rows = self.texts["valid"]

    def prepare_session(self, model_dir) -> None:
        pass  # one text a row: nothing to pack

    def make_stream(self, position: int) -> TextStream:
        return TextStream(self.texts["train"], self.spec.seed, position)

    def describe_data(self) -> str:
        return (f"classification head over {len(self.labels)} labels: {len(self.texts['train'])} training "
                f"and {len(self.texts['valid'])} held-out texts")  # fmt: skip

    def _accumulate(self, items: list[Item], n_trained: int) -> float:
        """The step's mean cross-entropy over its texts, micro-batch by micro-batch."""
        self.session.seed(step_seed(self.spec.seed, self.state.step))
        micro, total = self.state.micro_batch, 0.0
        for i in range(0, len(items), micro):
            batch = label_batch(
                [self.texts["train"][item.index] for item in items[i : i + micro]], self.pad_id
            )
            total += self.session.accumulate_labels(batch, 1.0 / len(items))
        return total / len(items)

    def validation_loss(self) -> float:
        """Mean cross-entropy on held-out texts (what early stopping watches), and their accuracy."""
        texts = self.valid_rows[: self.spec.eval_batches * self.plan.micro_batch]
        losses, hits, micro = [], 0, self.state.micro_batch
        for i in range(0, len(texts), micro):
            batch = label_batch(texts[i : i + micro], self.pad_id)
            logits = self.session.label_logits(batch)
            losses.append(cross_entropy(logits, batch.labels))
            hits += int((logits.argmax(axis=1) == batch.labels).sum())
        self.emit(Log(f"accuracy on {len(texts)} held-out texts: {hits / max(len(texts), 1):.2f}"))
        return float(np.concatenate(losses).mean()) if losses else 0.0
