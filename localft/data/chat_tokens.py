"""Turn a chat example into token ids and labels, with loss on the assistant turns only.

How the mask is found: the chat template renders the conversation to text. For each assistant
message i we render messages[:i] with the generation prompt (the text right before the reply)
and messages[:i+1] (the text right after it, end-of-turn marker included). The characters in
between are the reply; a token is trained when its first character falls in such a span. This
works for any template (ChatML, Llama 3, Gemma...) because it never parses the template itself.
Turn markers are special tokens in real tokenizers, so a reply's span ends on a token boundary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localft.errors import DataError

IGNORE = -100


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss is taken

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of each assistant reply."""
    full = render(tokenizer, messages)
    spans = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        after = render(tokenizer, messages[: i + 1])
        if not full.startswith(after) or not after.startswith(before):
            raise ValueError("chat template is not prefix-stable; cannot locate assistant turns")
        spans.append((len(before), len(after)))
    return full, spans


def tokenize_chat(
    tokenizer, messages: list[dict], max_len: int, train_on: str = "completions"
) -> TokenizedExample:
    """ids and labels for one conversation, truncated to `max_len` tokens."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_len]
    if train_on == "all":
        return TokenizedExample(ids, list(ids))
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


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a training split (chat or text JSONL); a bad line is an error naming file and line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise DataError(f"{path}:{n} is not valid JSON; fix or remove that line") from None
            if not isinstance(row, dict) or not ("messages" in row or "text" in row):
                raise DataError(f"{path}:{n} has neither 'messages' nor 'text'")
            rows.append(row)
    return rows
