"""Exact and near-duplicate detection: MinHash over character 5-grams, banded LSH, then exact Jaccard.

Returns clusters so the split can keep near-duplicates together even when dedup is off.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

SHINGLE = 5
PERMUTATIONS = 128
BANDS = 16  # 16 bands x 8 rows: pairs at 0.85 similarity collide with probability > 0.99
_PRIME = (1 << 61) - 1


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip()


def shingles(text: str) -> set[int]:
    norm = normalize(text)
    if len(norm) <= SHINGLE:
        return {zlib.crc32(norm.encode())}
    return {zlib.crc32(norm[i : i + SHINGLE].encode()) for i in range(len(norm) - SHINGLE + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the earliest post stays the cluster's root


def duplicate_clusters(texts: list[str], threshold: float) -> tuple[list[int], list[str]]:
    """For each text: its cluster (the index of the earliest text in it) and why it joined
    ("" for a cluster root, "exact" or "near")."""
    n = len(texts)
    uf, why = _UnionFind(n), [""] * n
    first_of: dict[str, int] = {}
    for i, t in enumerate(texts):
        key = normalize(t)
        if key in first_of:
            uf.union(first_of[key], i)
            why[i] = "exact"
        else:
            first_of[key] = i
    rest = [i for i in range(n) if not why[i]]
    sets = {i: shingles(texts[i]) for i in rest}
    rng = np.random.default_rng(12345)
    a = rng.integers(1, _PRIME, PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, _PRIME, PERMUTATIONS, dtype=np.uint64)
    rows = PERMUTATIONS // BANDS
    buckets: dict[tuple, list[int]] = {}
    for i in rest:
        x = np.fromiter(sets[i], dtype=np.uint64)
        # (a*x + b) mod p in 64 bits wraps, which is still a fine hash family for MinHash
        sig = ((np.outer(a, x) + b[:, None]) % np.uint64(_PRIME)).min(axis=1)
        for band in range(BANDS):
            buckets.setdefault((band, sig[band * rows : (band + 1) * rows].tobytes()), []).append(i)
    checked = set()
    for members in buckets.values():
        for j_pos, j in enumerate(members):
            for i in members[:j_pos]:
                if (i, j) in checked:
                    continue
                checked.add((i, j))
                if jaccard(sets[i], sets[j]) >= threshold:
                    if not why[j]:
                        why[j] = "near"
                    uf.union(i, j)
    return [uf.find(i) for i in range(n)], why
