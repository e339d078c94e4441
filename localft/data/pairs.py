"""Preference data: prompt/chosen/rejected pairs (standard or conversational JSONL, or a Hugging
Face dataset with a column mapping) and unpaired good/bad completions, validated into one form:
{"prompt": [messages], "chosen": [assistant turn], "rejected": [assistant turn]} or
{"prompt": [...], "completion": [...], "label": bool}."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localft.data.chat_tokens import TokenizedExample, jsonl_lines, tokenize_chat
from localft.errors import DataError

PAIR_FIELDS = ("prompt", "chosen", "rejected")
UNPAIRED_FIELDS = ("prompt", "completion", "label")


@dataclass(frozen=True)
class Pair:
    prompt: list[dict]  # the conversation up to the reply (system, user, earlier turns)
    chosen: str
    rejected: str

    def to_row(self) -> dict:
        return {"prompt": self.prompt, "chosen": _reply(self.chosen), "rejected": _reply(self.rejected)}


@dataclass(frozen=True)
class Judged:
    """One completion marked good or bad (KTO's unpaired data)."""

    prompt: list[dict]
    completion: str
    good: bool

    def to_row(self) -> dict:
        return {"prompt": self.prompt, "completion": _reply(self.completion), "label": self.good}


def pairs_path(run, split: str) -> Path:
    """A preference run's pairs (or KTO's judged completions) for `split` (train, valid)."""
    return run.data_dir / f"pairs-{split}.jsonl"


def _reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _prompt(value, where: str, system: str | None = None) -> list[dict]:
    """A prompt: plain text (one user turn) or a list of messages ending with a user turn."""
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: 'prompt' is empty")
        messages = [{"role": "user", "content": value}]
    elif isinstance(value, list) and value and all(_is_message(m) for m in value):
        messages = [{"role": m["role"], "content": m["content"]} for m in value]
        if messages[-1]["role"] != "user":
            raise DataError(
                f"{where}: the prompt's last message must be the user's, not {messages[-1]['role']!r}"
            )
    else:
        raise DataError(f"{where}: 'prompt' must be text or a list of {{role, content}} messages")
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return messages


def _is_message(m) -> bool:
    return isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)


def _side(row: dict, name: str, where: str) -> str:
    """A completion: plain text, or a conversational list whose last message is the assistant's."""
    value = row[name]
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        if value[-1]["role"] != "assistant" or len(value) != 1:
            raise DataError(f"{where}: '{name}' must be one assistant message")
        value = value[-1]["content"]
    if not isinstance(value, str):
        raise DataError(f"{where}: '{name}' must be text or one assistant message")
    if not value.strip():
        raise DataError(f"{where}: '{name}' is empty")
    return value


def parse_pair(row, where: str, system: str | None = None) -> Pair:
    """One validated pair; a problem is a one-line DataError naming `where` (file:line)."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object with prompt, chosen and rejected")
    missing = [f for f in PAIR_FIELDS if f not in row]
    if missing:
        raise DataError(f"{where}: missing field {', '.join(repr(f) for f in missing)}")
    pair = Pair(
        _prompt(row["prompt"], where, system), _side(row, "chosen", where), _side(row, "rejected", where)
    )
    if pair.chosen.strip() == pair.rejected.strip():
        raise DataError(f"{where}: chosen and rejected are identical; a pair must differ")
    return pair


def parse_judged(row, where: str, system: str | None = None) -> Judged:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object with prompt, completion and label")
    missing = [f for f in UNPAIRED_FIELDS if f not in row]
    if missing:
        raise DataError(f"{where}: missing field {', '.join(repr(f) for f in missing)}")
    if not isinstance(row["label"], bool):
        raise DataError(f"{where}: 'label' must be true (good) or false (bad)")
    return Judged(_prompt(row["prompt"], where, system), _side(row, "completion", where), row["label"])


def parse_row(row, where: str, system: str | None = None) -> Pair | Judged:
    if isinstance(row, dict) and "completion" in row and "chosen" not in row:
        return parse_judged(row, where, system)
    return parse_pair(row, where, system)


def read_preferences(path: Path, system: str | None = None) -> list[Pair | Judged]:
    """Every row of a preference JSONL file (pairs and judged completions may mix)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    rows = [parse_row(row, f"{path}:{n}", system) for n, row in jsonl_lines(path)]
    if not rows:
        raise DataError(f"{path} holds no preference pairs")
    return rows


def parse_columns(text: str | None) -> dict[str, str]:
    """'prompt=question,chosen=good,rejected=bad' → {"prompt": "question", ...}."""
    mapping = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        ours, sep, theirs = item.partition("=")
        if not sep or ours.strip() not in (*PAIR_FIELDS, "completion", "label"):
            raise DataError(
                f"bad column mapping {item!r}; write e.g. prompt=question,chosen=good,rejected=bad"
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


def read_hf_preferences(
    source: str, columns: dict[str, str] | None = None, system: str | None = None
) -> list[Pair | Judged]:
    """A Hugging Face dataset (a hub id, a saved folder or a data file) with our fields under the
    names `columns` maps them from (its train split, else its first)."""
    from localft.data.importers.hf import load_rows

    records = load_rows(source)
    columns = columns or {}
    have = set(records[0]) if records else set()
    unknown = [theirs for theirs in columns.values() if theirs not in have]
    if unknown:
        raise DataError(f"{source} has no column {unknown[0]!r}; its columns: {', '.join(sorted(have))}")
    wanted = {ours: columns.get(ours, ours) for ours in (*PAIR_FIELDS, "completion", "label")}
    rows = []
    for i, record in enumerate(records, 1):
        row = {ours: record[theirs] for ours, theirs in wanted.items() if theirs in record}
        rows.append(parse_row(row, f"{source} row {i}", system))
    if not rows:
        raise DataError(f"{source} holds no preference pairs")
    return rows


def write_preferences(path: Path, rows: list[Pair | Judged]) -> Path:
    from localft.atomic import atomic_write_text

    atomic_write_text(Path(path), "".join(json.dumps(r.to_row(), ensure_ascii=False) + "\n" for r in rows))
    return Path(path)


def as_pairs(rows: list[Pair | Judged]) -> list[Pair]:
    """Pairs for DPO-style methods: the pairs themselves, and a good and a bad completion of the
    same prompt made into one pair."""
    pairs = [r for r in rows if isinstance(r, Pair)]
    by_prompt: dict[str, dict[bool, list[str]]] = {}
    for r in rows:
        if isinstance(r, Judged):
            by_prompt.setdefault(json.dumps(r.prompt), {True: [], False: []})[r.good].append(r.completion)
    for key, marks in by_prompt.items():
        for good, bad in zip(marks[True], marks[False], strict=False):
            if good.strip() != bad.strip():
                pairs.append(Pair(json.loads(key), good, bad))
    return pairs


def as_judged(rows: list[Pair | Judged]) -> list[Judged]:
    """KTO's unpaired data: marks as they are, and each pair as one good and one bad completion."""
    out: list[Judged] = []
    for r in rows:
        if isinstance(r, Judged):
            out.append(r)
        else:
            out += [Judged(r.prompt, r.chosen, True), Judged(r.prompt, r.rejected, False)]
    return out


def tokenize_completion(tokenizer, prompt: list[dict], completion: str, max_len: int) -> TokenizedExample:
    """ids and labels of prompt + completion, trained on the completion only: the assistant-only
    mask of SFT rows (the reply through its end-of-turn token), the same for chosen and rejected."""
    messages = [*prompt, {"role": "assistant", "content": completion}]
    return tokenize_chat(tokenizer, messages, max_len, "completions", last_turns=1)
