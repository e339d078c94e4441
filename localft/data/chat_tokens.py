"""Turn a chat example into token ids and labels, with loss on the assistant turns only.

Each reply is located in the rendered conversation (`chat_render.content_spans`) and trained
from the end of the assistant header its generation prompt adds, so a reasoning block the
template renders there is trained where it is rendered, through the end-of-turn token after it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from localft.data.chat_render import (
    WAY_OUT,
    assistant_header,
    content_spans,
    fold_system,
    render,
    template_name,
)
from localft.errors import DataError

IGNORE = -100

__all__ = ["IGNORE", "TokenizedExample", "assistant_spans", "read_jsonl", "render", "tokenize_row"]


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span trained for each assistant reply."""
    messages = fold_system(tokenizer, messages)
    text = render(tokenizer, messages)
    located = content_spans(tokenizer, messages, text)
    end_of_turn = _special_token_pattern(tokenizer)
    spans, done = [], 0  # `done`: where the previous message's text (and its turn end) stopped
    for i, (message, span) in enumerate(zip(messages, located, strict=True)):
        if span is None:
            continue
        start, stop = span
        if start < done:
            raise _cannot_mask(tokenizer, "renders the messages out of order")
        if message["role"] != "assistant":
            done = stop
            continue
        if start == stop and message["content"].strip():
            raise _cannot_mask(tokenizer, "does not render an assistant reply")
        header = assistant_header(tokenizer, messages[:i])
        found = text.rfind(header, done, start) if header else -1
        if found >= 0:  # what the template puts between the header and the reply is the model's to write
            start = found + len(header)
        limit = next((s[0] for s in located[i + 1 :] if s is not None), len(text))
        marker = end_of_turn.search(text, stop, limit) if end_of_turn else None
        if marker is None:
            raise _cannot_mask(
                tokenizer, "ends a reply without a special end-of-turn token to learn to stop on"
            )
        spans.append((start, marker.end()))
        done = marker.end()
    return text, spans


def _cannot_mask(tokenizer, why: str) -> DataError:
    return DataError(f"{template_name(tokenizer)} {why}, so its assistant turns cannot be masked; {WAY_OUT}")


def _special_token_pattern(tokenizer) -> re.Pattern | None:
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials = set(getattr(tokenizer, "all_special_tokens", []) or [])
    specials.update(t.content for t in added.values() if getattr(t, "special", False))
    return _alternation(tuple(sorted((s for s in specials if s), key=lambda s: (-len(s), s))))


@lru_cache(maxsize=32)
def _alternation(strings: tuple[str, ...]) -> re.Pattern | None:
    return re.compile("|".join(map(re.escape, strings))) if strings else None


def tokenize_chat(
    tokenizer,
    messages: list[dict],
    max_len: int,
    train_on: str = "completions",
    last_turns: int | None = None,
) -> TokenizedExample:
    """ids and labels for one conversation, truncated to `max_len` tokens; with `last_turns`, only
    the last that many assistant replies are trained (a preference pair's completion, not the
    earlier turns of its prompt)."""
    if train_on == "all":
        ids = list(tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"])[:max_len]
        return TokenizedExample(ids, list(ids))
    text, spans = assistant_spans(tokenizer, messages)
    if last_turns is not None:
        spans = spans[len(spans) - last_turns :]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_len]
    labels = []
    for tok, (start, end) in zip(ids, enc["offset_mapping"], strict=False):
        trained = any(a <= start < b for a, b in spans) or (start == end and _inside(start, spans))
        labels.append(tok if trained else IGNORE)
    return TokenizedExample(ids, labels)


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < pos <= b for a, b in spans)


def tokenize_text(tokenizer, text: str, max_len: int) -> TokenizedExample:
    """A plain-text example: every token is trained; the eos token ends it."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = list(ids) + [tokenizer.eos_token_id]
    ids = ids[:max_len]
    return TokenizedExample(ids, list(ids))


def tokenize_row(tokenizer, row: dict, max_len: int, train_on: str = "completions") -> TokenizedExample:
    """A row of our chat JSONL ({"messages": [...]}) or text JSONL ({"text": ...})."""
    if "messages" in row:
        return tokenize_chat(tokenizer, row["messages"], max_len, train_on)
    return tokenize_text(tokenizer, row["text"], max_len)


def jsonl_lines(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line; a bad line is an error naming it."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except ValueError:
                raise DataError(f"{path}:{n} is not valid JSON; fix or remove that line") from None


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a training split (chat or text JSONL); a bad line is an error naming file and line."""
    rows = []
    for n, row in jsonl_lines(path):
        if not isinstance(row, dict) or not ("messages" in row or "text" in row):
            raise DataError(f"{path}:{n} has neither 'messages' nor 'text'")
        rows.append(row)
    return rows
