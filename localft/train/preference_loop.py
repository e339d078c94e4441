"""The training loop for preference methods: the core loop (order, accumulation, out-of-memory
halving, checkpoints, early stopping on the validation preference loss, stops) over pairs instead
of SFT rows. The reference policy's log-probs are computed once, with the starting adapter, and
stored in the run, so a resumed run compares against exactly the same numbers."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import numpy as np

from localft.atomic import atomic_write_json
from localft.data.chat_tokens import IGNORE, TokenizedExample
from localft.data.pairs import pairs_path
from localft.errors import DataError
from localft.events import Log

from .loop import Loop
from .preference import (
    REFERENCE_METHODS,
    NumpyOps,
    SequenceLogps,
    UnpairedLogps,
    default_beta,
    kto_loss,
    pair_loss,
    reward_accuracy,
)
from .preference_data import JudgedExample, load_examples
from .rows import Batch, Row, collate
from .state import step_seed

REFERENCE_FILE = "reference-logps.json"


@dataclass(frozen=True)
class Item:
    """One example of the stream: what the loop counts of it (trained and real tokens)."""

    index: int
    trained_tokens: int
    length: int

    def __len__(self) -> int:
        return self.length


class ExampleStream:
    """Examples in a seeded order, epoch after epoch; `position` (examples consumed) is the data
    position a checkpoint saves."""

    def __init__(self, examples: list, seed: int, position: int = 0) -> None:
        self.items = [
            Item(i, sum(_trained(s) for s in ex.sequences[: _graded(ex)]), sum(len(s.input_ids) for s in ex.sequences))
            for i, ex in enumerate(examples)
        ]  # fmt: skip
        self.seed, self.position = seed, position

    @property
    def rows_per_epoch(self) -> int:
        return len(self.items)

    def _order(self, epoch: int) -> list[int]:
        """The epoch's order: a pure function of (seed, epoch), so a resumed run continues it."""
        if getattr(self, "_epoch", None) != epoch:
            self._epoch, self._epoch_order = epoch, list(range(len(self.items)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(self._epoch_order)
        return self._epoch_order

    def take(self, n: int) -> list[Item]:
        out = []
        for _ in range(n):
            epoch, offset = divmod(self.position, len(self.items))
            out.append(self.items[self._order(epoch)[offset]])
            self.position += 1
        return out


def _graded(example) -> int:
    """Sequences with gradients: both of a pair; KTO's completion (its KL twin runs without)."""
    return 1 if isinstance(example, JudgedExample) else 2


def _trained(example: TokenizedExample) -> int:
    return sum(1 for x in example.labels[1:] if x != IGNORE)


def _row(example: TokenizedExample) -> Row:
    ids = tuple(example.input_ids)
    return Row(ids, (IGNORE, *example.labels[1:]), tuple(range(len(ids))))


class PreferenceLoop(Loop):
    """DPO, IPO, ORPO, SimPO or KTO on the run's pairs (data/pairs-{train,valid}.jsonl)."""

    def prepare_data(self, tokenizer) -> None:
        spec, plan = self.spec, self.plan
        self.beta = default_beta(spec.method, spec.beta)
        self.examples = {
            split: load_examples(tokenizer, pairs_path(self.run_dir, split), spec.method, plan.max_seq_len)
            for split in ("train", "valid")
        }
        if not self.examples["train"]:
            raise DataError(
                f"run {self.run_dir.id} has no usable preference examples in {pairs_path(self.run_dir, 'train')}; "
                "collect pairs in the chat or use --pairs self"
            )
        self.valid_rows = self.examples["valid"]  # evaluation runs when there are held-out pairs

    def make_stream(self, position: int) -> ExampleStream:
        return ExampleStream(self.examples["train"], self.spec.seed, position)

    def prepare_session(self, model_dir) -> None:
        self.reference = self.reference_logps() if self.spec.method in REFERENCE_METHODS else None

    def describe_data(self) -> str:
        what = "examples" if self.spec.method == "kto" else "pairs"
        return (f"{self.spec.method} (beta {self.beta:g}) on {len(self.examples['train'])} training and "
                f"{len(self.examples['valid'])} held-out {what}")  # fmt: skip

    # -- reference ---------------------------------------------------------------------------

    def reference_logps(self) -> dict[str, np.ndarray]:
        """Per example: the reference's log-prob of each sequence (a pair's chosen and rejected;
        KTO's completion and KL twin), computed once with the starting policy and stored."""
        path = self.run_dir.data_dir / REFERENCE_FILE
        counts = {split: len(ex) for split, ex in self.examples.items()}
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if {s: len(v) for s, v in stored.items()} == counts:
                return {s: np.asarray(v, dtype=np.float64).reshape(-1, 2) for s, v in stored.items()}
        except (FileNotFoundError, ValueError):
            pass
        reference = {split: self.policy_logps(examples)[0] for split, examples in self.examples.items()}
        atomic_write_json(path, {s: v.tolist() for s, v in reference.items()})
        self.emit(Log(f"reference log-probs of {sum(counts.values())} examples computed once with the "
                      f"starting adapter (data/{REFERENCE_FILE})"))  # fmt: skip
        return reference

    def policy_logps(self, examples: list) -> tuple[np.ndarray, np.ndarray]:
        """(log-probs, token counts), each (N, 2): the current policy's, without gradients."""
        sums, counts = [], []
        step = max(self.plan.micro_batch, 1)
        for start in range(0, len(examples), step):
            chunk = examples[start : start + step]
            s, c = self.session.sequence_logps(self.batch(chunk))
            n = len(chunk)
            sums.append(np.stack([s[:n], s[n:]], axis=1))
            counts.append(np.stack([c[:n], c[n:]], axis=1))
        empty = np.zeros((0, 2))
        return (np.concatenate(sums) if sums else empty), (np.concatenate(counts) if counts else empty)

    def batch(self, examples: list) -> Batch:
        """Every first sequence of the examples, then every second one (chosen then rejected, or
        completions then KL twins)."""
        rows = [_row(ex.sequences[0]) for ex in examples] + [_row(ex.sequences[1]) for ex in examples]
        return collate(rows, self.pad_id, self.session.pad_multiple)

    # -- training ----------------------------------------------------------------------------

    def _accumulate(self, items: list[Item], n_trained: int) -> float:
        """The step's mean preference loss; each micro-batch's gradient is weighted by its share
        of the step's examples."""
        self.session.seed(step_seed(self.spec.seed, self.state.step))
        micro, total = self.state.micro_batch, 0.0
        for i in range(0, len(items), micro):
            chunk = items[i : i + micro]
            indices = [item.index for item in chunk]
            loss = self.session.accumulate_objective(
                *self.objective("train", indices), len(chunk) / len(items)
            )
            total += loss * len(chunk)
        return total / len(items)

    def objective(self, split: str, indices: list[int]):
        """(batch, objective): the micro-batch the backend runs with gradients, and the loss of its
        per-sequence log-probs, written once in localft.train.preference."""
        examples = [self.examples[split][i] for i in indices]
        ref = None if self.reference is None else self.reference[split][indices]
        method, beta, n = self.spec.method, self.beta, len(examples)
        if method == "kto":
            kl_policy = self.session.sequence_logps(self.batch(examples))[0][n:]
            good = np.asarray([float(ex.good) for ex in examples])
            rows = [_row(ex.completion) for ex in examples]

            def kto(ops, sums, counts):
                policy = UnpairedLogps(sums, ops.asarray(good, sums), ops.asarray(kl_policy, sums))
                reference = UnpairedLogps(ops.asarray(ref[:, 0], sums), None, ops.asarray(ref[:, 1], sums))
                return kto_loss(ops, beta, policy, reference)

            return collate(rows, self.pad_id, self.session.pad_multiple), kto

        def paired(ops, sums, counts):
            policy = SequenceLogps(sums[:n], sums[n:], counts[:n], counts[n:])
            reference = None
            if ref is not None:
                reference = SequenceLogps(
                    ops.asarray(ref[:, 0], sums), ops.asarray(ref[:, 1], sums), None, None
                )
            return pair_loss(ops, method, beta, policy, reference)

        return self.batch(examples), paired

    # -- validation --------------------------------------------------------------------------

    def validation_loss(self) -> float:
        """The preference loss on held-out examples (what early stopping watches), and the reward
        accuracy there (chosen reward above rejected), on plain numbers."""
        examples = self.examples["valid"][: self.spec.eval_batches * self.plan.micro_batch]
        indices = list(range(len(examples)))
        sums, counts = self.policy_logps(examples)
        parts = self.score(sums, counts, "valid", indices)
        if self.spec.method != "kto":
            accuracy = reward_accuracy(parts.chosen_rewards, parts.rejected_rewards)
            self.emit(Log(f"reward accuracy on {len(examples)} held-out pairs: {accuracy:.2f}"))
        return float(parts.loss)

    def score(self, sums: np.ndarray, counts: np.ndarray, split: str, indices: list[int]):
        ops, method = NumpyOps(), self.spec.method
        ref = None if self.reference is None else self.reference[split][indices]
        if method == "kto":
            good = np.asarray([float(self.examples[split][i].good) for i in indices])
            policy = UnpairedLogps(sums[:, 0], good, sums[:, 1])
            return kto_loss(ops, self.beta, policy, UnpairedLogps(ref[:, 0], good, ref[:, 1]))
        policy = SequenceLogps(sums[:, 0], sums[:, 1], counts[:, 0], counts[:, 1])
        reference = None if ref is None else SequenceLogps(ref[:, 0], ref[:, 1], None, None)
        return pair_loss(ops, method, self.beta, policy, reference)
