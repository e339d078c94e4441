"""Verbatim leak check: the longest run of words a generation shares with any training post."""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\w+(?:'\w+)?")

# A shared run of this many words is flagged as a memorized passage: shorter runs happen by
# chance in ordinary prose ("I am excited to share that I have").
DEFAULT_FLAG_WORDS = 12


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Leak:
    length: int  # words in the longest shared run
    passage: str  # that run, lower-cased words joined by spaces
    flagged: bool


class TrainingIndex:
    """The training posts' word n-grams, built per n on first use."""

    def __init__(self, posts: list[str]):
        self._posts = [words(p) for p in posts]
        self._grams: dict[int, set[tuple[str, ...]]] = {}

    def grams(self, n: int) -> set[tuple[str, ...]]:
        if n not in self._grams:
            self._grams[n] = {tuple(p[i : i + n]) for p in self._posts for i in range(len(p) - n + 1)}
        return self._grams[n]

    def longest_shared(self, text: str) -> tuple[int, tuple[str, ...]]:
        """Length and words of the longest run of `text` found verbatim in a training post.
        Binary search works because a shared n-gram implies every shorter one is shared."""
        toks = words(text)
        lo, hi, best = 0, len(toks), ()
        while lo < hi:
            mid = (lo + hi + 1) // 2
            grams = self.grams(mid)
            windows = (tuple(toks[i : i + mid]) for i in range(len(toks) - mid + 1))
            hit = next((w for w in windows if w in grams), None)
            if hit:
                lo, best = mid, hit
            else:
                hi = mid - 1
        return lo, best


def leak_check(
    generations: list[str], training_posts: list[str], flag_words: int = DEFAULT_FLAG_WORDS
) -> list[Leak]:
    """One `Leak` per generation."""
    index = TrainingIndex(training_posts)
    out = []
    for text in generations:
        n, run = index.longest_shared(text)
        out.append(Leak(n, " ".join(run), n >= flag_words))
    return out


def leak_summary(leaks: list[Leak]) -> dict:
    return {
        "longest": max((x.length for x in leaks), default=0),
        "mean_longest": (sum(x.length for x in leaks) / len(leaks)) if leaks else 0.0,
        "flagged": [x.passage for x in leaks if x.flagged],
    }
