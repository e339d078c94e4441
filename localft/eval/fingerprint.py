"""Style fingerprint of a set of posts, and a distance between two fingerprints.

Each feature is averaged over posts; the distance scales each gap by the real posts' spread.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import asdict, dataclass, field

# Common English function words: their relative frequencies are a classic authorship signal.
FUNCTION_WORDS = (
    "the", "a", "an", "and", "but", "or", "so", "of", "to", "in", "on", "for", "with", "at", "by",
    "from", "about", "as", "i", "me", "my", "we", "our", "you", "your", "it", "this", "that",
    "is", "are", "was", "be", "have", "not", "no", "just", "what", "how", "why", "if", "when",
    "more", "all", "can", "will", "do", "there", "they", "their", "here",
)  # fmt: skip

_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_LIST_LINE = re.compile(r"^\s*(?:[-*•▪►✅→]|\d+[.)])\s+")
_EMOJI = re.compile("[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U00002b00-\U00002bff]")

# Scalar features, with the least spread used to scale a gap (so a corpus of identical posts
# does not turn a tiny difference into a huge distance).
SCALE_FLOOR = {
    "chars": 40.0,
    "words_per_sentence": 2.0,
    "lines": 1.0,
    "list_line_share": 0.05,
    "emoji_per_100_words": 0.5,
    "hashtags_per_100_words": 0.5,
    "question_share": 0.05,
    "exclamation_share": 0.05,
}
# A gap is capped so one wild feature cannot swamp the rest.
MAX_FEATURE_DISTANCE = 3.0


@dataclass(frozen=True)
class Fingerprint:
    posts: int
    means: dict[str, float]
    spreads: dict[str, float]  # standard deviation over posts
    function_words: dict[str, float] = field(default_factory=dict)  # share among function words

    def to_dict(self) -> dict:
        return asdict(self)


def post_features(text: str) -> dict[str, float]:
    """The scalar style features of one post."""
    words = _WORD.findall(text)
    n_words = max(len(words), 1)
    sentences = [s for s in _SENTENCE_END.split(text) if _WORD.search(s)]
    enders = _SENTENCE_END.findall(text)
    n_sent = max(len(sentences), 1)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return {
        "chars": float(len(text)),
        "words_per_sentence": len(words) / n_sent,
        "lines": float(len(lines)),
        "list_line_share": sum(1 for ln in lines if _LIST_LINE.match(ln)) / max(len(lines), 1),
        "emoji_per_100_words": 100 * len(_EMOJI.findall(text)) / n_words,
        "hashtags_per_100_words": 100 * len(_HASHTAG.findall(text)) / n_words,
        "question_share": sum(1 for e in enders if "?" in e) / max(len(enders), 1),
        "exclamation_share": sum(1 for e in enders if "!" in e) / max(len(enders), 1),
    }


def function_word_shares(texts: list[str]) -> dict[str, float]:
    counts = dict.fromkeys(FUNCTION_WORDS, 0)
    for text in texts:
        for w in _WORD.findall(text.lower()):
            if w in counts:
                counts[w] += 1
    total = sum(counts.values())
    return {w: (c / total if total else 0.0) for w, c in counts.items()}


def fingerprint(texts: list[str]) -> Fingerprint:
    """The mean and spread of each feature over `texts`, and their function-word profile."""
    texts = [t for t in texts if t and t.strip()]
    rows = [post_features(t) for t in texts] or [dict.fromkeys(SCALE_FLOOR, 0.0)]
    means = {k: statistics.fmean(r[k] for r in rows) for k in SCALE_FLOOR}
    spreads = {k: (statistics.pstdev(r[k] for r in rows) if len(rows) > 1 else 0.0) for k in SCALE_FLOOR}
    return Fingerprint(len(texts), means, spreads, function_word_shares(texts))


def feature_distances(candidate: Fingerprint, reference: Fingerprint) -> dict[str, float]:
    """Per-feature gap in units of the reference spread (capped), plus the function-word gap.

    The function-word gap is the total-variation distance (0..1) times the cap, so it weighs
    like one fully different scalar feature at most."""
    out = {}
    for k, floor in SCALE_FLOOR.items():
        scale = max(reference.spreads.get(k, 0.0), floor)
        gap = abs(candidate.means[k] - reference.means[k]) / scale
        out[k] = min(gap, MAX_FEATURE_DISTANCE)
    tv = 0.5 * sum(
        abs(candidate.function_words.get(w, 0.0) - reference.function_words.get(w, 0.0))
        for w in FUNCTION_WORDS
    )
    out["function_words"] = tv * MAX_FEATURE_DISTANCE
    return out


def style_distance(candidate: Fingerprint, reference: Fingerprint) -> float:
    """Mean of the feature gaps: 0 is the same style; larger is further from the reference."""
    gaps = feature_distances(candidate, reference)
    value = statistics.fmean(gaps.values())
    return 0.0 if math.isnan(value) else value
