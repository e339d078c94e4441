"""Prepared data: JSONL or CSV with a text column (posts), chat JSONL, completions JSONL, text JSONL.

Chat and completions rows keep their conversation; text rows stay `{"text": ...}`. Every row is
validated, and a bad one is reported by file and line.
"""

from __future__ import annotations

import json

from localft.config import DataSpec
from localft.data.importers.csv_rows import no_text_column, read_csv
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource, parse_json, shown
from localft.errors import DataError

TEXT_COLUMNS = ("text", "content", "post", "body", "full_text", "ShareCommentary", "message")
DATE_COLUMNS = ("date", "created_at", "published", "timestamp", "Date")
ROLES = ("system", "user", "assistant")


def read_jsonl_rows(src: ExportSource, name: str) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a `.json` file may hold one list instead."""
    text, label = src.read_text(name), src.label(name)
    if name.lower().endswith(".json") and text.lstrip().startswith("["):
        try:
            rows = parse_json(text, label)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{label} line {exc.lineno}: not valid JSON ({exc.msg}); fix or re-export the file"
            ) from None
        numbered = list(enumerate(rows, start=1))
    else:
        numbered = []
        for n, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    numbered.append((n, parse_json(line, f"{label} line {n}")))
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"{label} line {n}: not valid JSON ({exc.msg}); each line must be one JSON object"
                    ) from None
    for n, row in numbered:
        if not isinstance(row, dict):
            raise DataError(f"{label} line {n}: expected a JSON object, found {type(row).__name__}")
    return numbered


def sniff_jsonl(src: ExportSource, name: str) -> str:
    """chat, completions or jsonl (posts in a text column), from the first row's keys."""
    rows = read_jsonl_rows(src, name)
    if not rows:
        raise DataError(f"{src.label(name)} holds no rows; pass a file with one JSON object per line")
    keys = rows[0][1]
    if "messages" in keys:
        return "chat"
    if "prompt" in keys and "completion" in keys:
        return "completions"
    return "jsonl"


def _data_file(src: ExportSource, suffixes: tuple[str, ...], what: str) -> str:
    names = [n for n in src.names() if n.lower().endswith(suffixes)]
    if len(names) != 1:
        found = "none" if not names else f"{len(names)} ({', '.join(names[:3])})"
        raise DataError(f"{src.path}: expected one {what} file, found {found}; pass the file itself")
    return names[0]


Numbered = list[tuple[int, dict]]


def read_column_posts(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    """Posts from JSONL or CSV rows: the text column is `spec.text_column` or a usual name."""
    name = _data_file(src, (".jsonl", ".json", ".csv", ".ndjson"), "JSONL or CSV")
    label = src.label(name)
    if name.lower().endswith(".csv"):
        numbered = list(enumerate(read_csv(src.read_text(name), label), start=2))
    else:
        numbered = read_jsonl_rows(src, name)
    return column_posts(numbered, label, name, spec, tally), None


def column_posts(
    numbered: Numbered, label: str, name: str, spec: DataSpec, tally: Tally, unit: str = "line"
) -> list[Post]:
    if not numbered:
        raise DataError(f"{label} holds no rows; pass a file with one post per row")
    columns = list(numbered[0][1])
    column = spec.text_column or next((c for c in TEXT_COLUMNS if c in columns), None)
    if column is None or column not in columns:
        raise no_text_column(f"{label} {unit} 1", columns, spec.text_column)
    date_column = next((c for c in DATE_COLUMNS if c in columns), None)
    posts = []
    for n, row in numbered:
        tally.read += 1
        text = row.get(column)
        if text is None or (isinstance(text, str) and not text.strip()):
            tally.drop("empty")
            continue
        if not isinstance(text, str):
            raise DataError(
                f"{label} {unit} {n}: column {shown(column)!r} is {type(text).__name__}, not text"
            )
        date = row.get(date_column, "") if date_column else ""
        source_id = str(row.get("id", f"{name}:{n}"))
        posts.append(Post(text=text.strip(), source_id=source_id, date=str(date), meta={"file": name}))
    return posts


def read_chat(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    name = _data_file(src, (".jsonl", ".json", ".ndjson"), "chat JSONL")
    return chat_posts(read_jsonl_rows(src, name), src.label(name), name, tally), None


def chat_posts(numbered: Numbered, label: str, name: str, tally: Tally, unit: str = "line") -> list[Post]:
    """Chat rows as posts; a row whose turns are out of order is dropped and counted by reason."""
    posts = []
    for n, row in numbered:
        tally.read += 1
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            example = '{"messages": [{"role": ..., "content": ...}]}'
            raise DataError(f"{label} {unit} {n}: no 'messages' list; chat rows look like {example}")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise DataError(
                    f"{label} {unit} {n}: each message needs a role ({', '.join(ROLES)}) and text content"
                )
        roles = [m["role"] for m in messages]
        if problem := role_order_problem(roles):
            tally.drop(problem)
            continue
        clean = [{"role": m["role"], "content": m["content"]} for m in messages]
        posts.append(
            Post(
                text=clean[-1]["content"],
                source_id=f"{name}:{n}",
                kind="chat",
                messages=clean,
                meta={"file": name},
            )
        )
    return posts


def role_order_problem(roles: list[str]) -> str | None:
    """Why a conversation is not [system] user assistant [user assistant ...], the order every chat
    template expects (Gemma's and Mistral's raise on anything else); None when it is."""
    turns = roles[1:] if roles[0] == "system" else roles
    if "system" in turns:
        return "chat rows with a system turn after the start"
    if turns and turns[0] == "assistant":
        return "chat rows starting with the assistant"
    for i in range(1, len(turns)):
        if turns[i] == turns[i - 1]:
            return f"chat rows with two {turns[i]} turns in a row"
    if not turns or turns[-1] != "assistant":
        return "chat rows not ending with an assistant reply"
    return None


def read_completions(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    name = _data_file(src, (".jsonl", ".json", ".ndjson"), "completions JSONL")
    return completion_posts(read_jsonl_rows(src, name), src.label(name), name, tally), None


def completion_posts(
    numbered: Numbered, label: str, name: str, tally: Tally, unit: str = "line"
) -> list[Post]:
    posts = []
    for n, row in numbered:
        tally.read += 1
        prompt, completion = row.get("prompt"), row.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise DataError(f"{label} {unit} {n}: completions rows need text 'prompt' and 'completion' keys")
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        posts.append(
            Post(
                text=completion,
                source_id=f"{name}:{n}",
                kind="completion",
                messages=messages,
                meta={"file": name},
            )
        )
    return posts


def read_text_rows(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    """Text JSONL (`{"text": ...}`): trained on every token, no prompt."""
    name = _data_file(src, (".jsonl", ".json", ".ndjson"), "text JSONL")
    label = src.label(name)
    column = spec.text_column or "text"
    posts = []
    for n, row in read_jsonl_rows(src, name):
        tally.read += 1
        if not isinstance(row.get(column), str):
            raise DataError(
                f"{label} line {n}: text rows need a text {shown(column)!r} key; pass --text-column NAME"
            )
        posts.append(Post(text=row[column], source_id=f"{name}:{n}", kind="text", meta={"file": name}))
    return posts, None
