"""Rewards a person can read, from localft's own evaluations: each is a plain function of (request,
draft, the run's data) giving a number, combined with weights. A style run rewards the person's
fingerprint, punishes a passage copied from a training post and checks the platform's form; a
json-extractor run rewards valid JSON and the right fields; a classify run the right label. A
user's own reward (`path.py:function`) is loaded only when named."""

from __future__ import annotations

import importlib.util
import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from localft.errors import ConfigError, LocalftError

from .fingerprint import _HASHTAG, MAX_FEATURE_DISTANCE, Fingerprint, fingerprint, style_distance
from .inputs import Task, split_prompt
from .json_shape import json_scores, parse_strict
from .leak import DEFAULT_FLAG_WORDS, TrainingIndex

HASHTAG_HABIT = 0.5  # a person tags a post when at least half of theirs carry a hashtag


class RewardFailed(LocalftError):
    """A reward raised or gave a number that is not finite: the run stops, naming it."""


@dataclass(frozen=True)
class Request:
    """One training request: the turns before the reply, and the reply the data holds (what
    field accuracy and the label compare against)."""

    messages: list[dict]
    reference: str

    @classmethod
    def from_row(cls, row: dict) -> Request:
        before, reply = split_prompt(row)
        return cls(before, reply)


@dataclass
class RunData:
    """What the rewards read of the run: its training replies (the person's posts), their
    fingerprint, an index of their word n-grams, their usual length and line count, and how long a
    run of words the person's own held-out posts share with them (`held_out`: the validation
    split's replies, never the test split the report scores)."""

    posts: list[str]
    held_out: list[str] = field(default_factory=list)
    style: Fingerprint = field(init=False)
    index: TrainingIndex = field(init=False)
    chars: tuple[float, float] = field(init=False)
    lines: tuple[float, float] = field(init=False)
    tags_posts: bool = field(init=False)
    copy_words: int = field(init=False)  # a draft sharing this many words with a post is a copy

    def __post_init__(self) -> None:
        posts = [p for p in self.posts if p.strip()] or [""]
        self.style, self.index = fingerprint(posts), TrainingIndex(posts)
        self.chars = _middle([len(p) for p in posts])
        self.lines = _middle([len([ln for ln in p.splitlines() if ln.strip()]) for p in posts])
        self.tags_posts = sum(bool(_HASHTAG.search(p)) for p in posts) / len(posts) >= HASHTAG_HABIT
        # A person who reuses their own sentences (signatures, stock lines) would be punished for
        # writing like themselves: a copy is a run longer than 9 in 10 of their new posts share
        # with the old ones, and never shorter than the leak check's 12 words.
        own = [self.index.longest_shared(p)[0] for p in self.held_out if p.strip()]
        self.copy_words = max(DEFAULT_FLAG_WORDS, int(_middle(own)[1]) + 1) if own else DEFAULT_FLAG_WORDS

    @classmethod
    def from_rows(cls, rows: list[dict], held_out_rows: list[dict] = ()) -> RunData:
        return cls([split_prompt(r)[1] for r in rows], [split_prompt(r)[1] for r in held_out_rows])


def _middle(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values or [0.0])[0], (values or [0.0])[0]
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return cuts[0], cuts[-1]  # the person's usual range: the middle 80% of their posts


def style(request: Request, draft: str, data: RunData) -> float:
    """1 for a draft with the person's fingerprint, falling to 0 at the largest distance."""
    return 1.0 - style_distance(fingerprint([draft]), data.style) / MAX_FEATURE_DISTANCE


def copied(request: Request, draft: str, data: RunData) -> float:
    """-1 for a draft that repeats a longer run of a training post than the person's own held-out
    posts do (at least 12 words), else 0."""
    return -1.0 if data.index.longest_shared(draft)[0] >= data.copy_words else 0.0


def form(request: Request, draft: str, data: RunData) -> float:
    """The share of the platform's form the draft keeps: its length and its line count within the
    person's usual range, a hashtag where the person tags posts (none where they do not)."""
    lines = len([ln for ln in draft.splitlines() if ln.strip()])
    checks = (
        data.chars[0] <= len(draft) <= data.chars[1],
        data.lines[0] <= lines <= data.lines[1],
        bool(_HASHTAG.search(draft)) == data.tags_posts,
    )
    return sum(checks) / len(checks)


def valid_json(request: Request, draft: str, data: RunData) -> float:
    return 1.0 if parse_strict(draft) is not None else 0.0


def json_fields(request: Request, draft: str, data: RunData) -> float:
    """The share of the reference reply's fields the draft reproduces with an equal value."""
    return json_scores([draft], [request.reference])["field_accuracy"]


def label(request: Request, draft: str, data: RunData) -> float:
    return 1.0 if draft.strip().casefold() == request.reference.strip().casefold() else 0.0


Reward = Callable[[Request, str, RunData], float]
REWARDS: dict[str, Reward] = {"style": style, "copied": copied, "form": form, "valid_json": valid_json,
                              "json_fields": json_fields, "label": label}  # fmt: skip
# Each task's rewards and weights (a spec's weights replace these): the style counts most; a copied
# passage costs as much as the best style earns.
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "style": {"style": 1.0, "copied": 1.0, "form": 0.5},
    "json": {"valid_json": 0.5, "json_fields": 1.0},
    "classify": {"label": 1.0},
}


def load_user_reward(target: str) -> Reward:
    """`path.py:function` (a file of the user's, imported now and only now) as a reward."""
    path_text, sep, name = target.rpartition(":")
    path = Path(path_text).expanduser()
    if not sep or not name or path.suffix != ".py":
        raise ConfigError(f"reward {target!r}: name it as path/to/file.py:function")
    if not path.is_file():
        raise ConfigError(f"reward {target!r}: {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"localft_user_reward_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: whatever it raises is theirs to fix
        raise ConfigError(
            f"reward {target!r}: importing {path.name} raised {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"reward {target!r}: {path.name} has no function {name}")
    return function


class Scorer:
    """The weighted sum of named rewards over a request's drafts."""

    def __init__(self, rewards: Mapping[str, Reward], weights: Mapping[str, float], data: RunData) -> None:
        unknown = sorted(set(weights) - set(rewards))
        if unknown:
            raise ConfigError(f"unknown reward {', '.join(unknown)}; known: {', '.join(sorted(rewards))}")
        self.rewards = {name: rewards[name] for name, w in weights.items() if w}
        self.weights, self.data = dict(weights), data

    @classmethod
    def for_task(cls, task: Task, data: RunData, weights: Mapping[str, float] | None = None,
                 user: str | None = None) -> Scorer:  # fmt: skip
        """The task's rewards with the spec's weights; a user reward (`user`) joins as "user",
        weight 1 unless the weights say otherwise."""
        rewards = dict(REWARDS)
        chosen = dict(weights) if weights else dict(DEFAULT_WEIGHTS.get(task, DEFAULT_WEIGHTS["style"]))
        if user:
            rewards["user"] = load_user_reward(user)
            chosen.setdefault("user", 1.0)
        return cls(rewards, chosen, data)

    def parts(self, request: Request, draft: str) -> dict[str, float]:
        """Each reward's value for one draft; a reward that raises or gives a non-finite number
        stops here with one line naming it."""
        out = {}
        for name, reward in self.rewards.items():
            try:
                value = float(reward(request, draft, self.data))
            except Exception as exc:  # a user's reward may raise anything: the run names it and stops
                raise RewardFailed(f"reward {name} raised {type(exc).__name__}: {exc}") from None
            if not math.isfinite(value):
                raise RewardFailed(f"reward {name} returned {value} (it must be a finite number)")
            out[name] = value
        return out

    def score(self, request: Request, draft: str) -> float:
        return self.weighted(self.parts(request, draft))

    def weighted(self, parts: Mapping[str, float]) -> float:
        return sum(self.weights[name] * value for name, value in parts.items())

    def score_group(self, request: Request, drafts: list[str]) -> list[float]:
        return [self.score(request, d) for d in drafts]


def check_rewards(spec) -> None:
    """Refuse, before a grpo round's run is made, a reward weight of no known reward or a user
    reward that does not load (the worker would only find out after loading the model)."""
    known = set(REWARDS) | ({"user"} if spec.reward else set())
    unknown = sorted(set(spec.reward_weights or {}) - known)
    if unknown:
        raise ConfigError(f"unknown reward {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if spec.reward:
        load_user_reward(spec.reward)


class RowScorer:
    """A run's scorer over its chat rows (what a reinforcement round's loop hands it): the task's
    rewards with the spec's weights and user reward, the run's training replies as its data."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    @classmethod
    def for_run(cls, run, spec) -> RowScorer:
        from localft.data.chat_tokens import read_jsonl

        from .inputs import run_task

        rows, held_out = ([r for r in read_jsonl(run.split_path(split)) if "messages" in r]
                          if run.split_path(split).is_file() else [] for split in ("train", "valid"))  # fmt: skip
        data = RunData.from_rows(rows, held_out)
        return cls(Scorer.for_task(run_task(run), data, spec.reward_weights, spec.reward))

    def score_row(self, row: dict, drafts: list[str]) -> list[float]:
        return self.scorer.score_group(Request.from_row(row), drafts)

    def held_out(self, rows: list[dict], replies: list[list[str]]) -> dict:
        """The reward of the replies to each held-out request (one or more draws of the same policy
        a round trains on; a request's value is the mean of its draws): the mean over requests, the
        spread, a 95% bootstrap interval of the mean, and each reward's own mean."""
        import numpy as np

        from localft.export.verify import bootstrap_mean_interval

        requests = [Request.from_row(r) for r in rows]
        parts = [[self.scorer.parts(q, d) for d in ds] for q, ds in zip(requests, replies, strict=True)]
        values = np.asarray([np.mean([self.scorer.weighted(p) for p in draws]) for draws in parts])
        low, high = bootstrap_mean_interval(values) if len(values) else (math.nan, math.nan)
        means = {name: float(np.mean([p[name] for draws in parts for p in draws])) if parts else math.nan
                 for name in self.scorer.rewards}  # fmt: skip
        return {"mean": float(values.mean()) if len(values) else math.nan, "std": float(values.std()),
                "low": low, "high": high, "n": len(values), "draws": max(map(len, replies), default=0),
                "weights": self.scorer.weights, "parts": means, "values": [float(v) for v in values]}  # fmt: skip


def paired_gain(better: dict, than: dict) -> dict:
    """How much higher one model's held-out rewards are than another's on the same requests: the
    mean of the per-request differences, its 95% bootstrap interval (tighter than two models'
    own intervals, since it cancels what makes a request easy or hard for both), and on how many
    requests it is higher."""
    import numpy as np

    from localft.export.verify import bootstrap_mean_interval

    diff = np.asarray(better["values"]) - np.asarray(than["values"])
    low, high = bootstrap_mean_interval(diff) if len(diff) else (math.nan, math.nan)
    return {"mean": float(diff.mean()) if len(diff) else math.nan, "low": low, "high": high,
            "higher": int((diff > 0).sum()), "lower": int((diff < 0).sum()), "n": len(diff)}  # fmt: skip
