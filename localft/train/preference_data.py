"""A preference run's examples, framework-free: each pair's chosen and rejected completion (or
KTO's judged completion and its mismatched KL twin) tokenized with the assistant-only mask."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from localft.data.chat_tokens import IGNORE, TokenizedExample
from localft.data.pairs import Judged, Pair, read_preferences, tokenize_completion


@dataclass(frozen=True)
class PairExample:
    chosen: TokenizedExample
    rejected: TokenizedExample

    @property
    def sequences(self) -> tuple[TokenizedExample, ...]:
        return self.chosen, self.rejected


@dataclass(frozen=True)
class JudgedExample:
    """A completion marked good or bad, and the same prompt with another example's completion
    (the mismatched pair whose log-ratio estimates KTO's KL term)."""

    completion: TokenizedExample
    mismatched: TokenizedExample
    good: bool

    @property
    def sequences(self) -> tuple[TokenizedExample, ...]:
        return self.completion, self.mismatched


def _trains(example: TokenizedExample) -> bool:
    return len(example.input_ids) > 1 and any(x != IGNORE for x in example.labels[1:])


def load_examples(tokenizer, path: Path, method: str, max_len: int) -> list[PairExample | JudgedExample]:
    """The usable examples of a pairs file (a missing or empty file: none). A pair whose completion
    does not fit `max_len` after its prompt teaches nothing and is left out."""
    path = Path(path)
    rows = read_preferences(path) if path.is_file() and path.stat().st_size else []
    if method == "kto":
        judged = [r for r in rows if isinstance(r, Judged)]
        out: list = []
        for i, r in enumerate(judged):
            other = judged[(i + 1) % len(judged)].completion
            example = JudgedExample(
                tokenize_completion(tokenizer, r.prompt, r.completion, max_len),
                tokenize_completion(tokenizer, r.prompt, other, max_len),
                r.good,
            )
            if _trains(example.completion) and _trains(example.mismatched):
                out.append(example)
        return out
    pairs = [
        PairExample(
            tokenize_completion(tokenizer, r.prompt, r.chosen, max_len),
            tokenize_completion(tokenizer, r.prompt, r.rejected, max_len),
        )
        for r in rows
        if isinstance(r, Pair)
    ]
    return [p for p in pairs if _trains(p.chosen) and _trains(p.rejected)]


def preference_lengths(path: Path, spec) -> tuple[int, ...]:
    """What the plan counts per example: the tokens of its sequences together."""
    from localft.plan.catalog import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(spec.model), chat=True)
    examples = load_examples(tokenizer, path, spec.method, spec.max_seq_len)
    return tuple(sum(len(s.input_ids) for s in ex.sequences) for ex in examples)
