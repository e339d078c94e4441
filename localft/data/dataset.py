"""build_dataset: import an export, make chat rows, split them deterministically, write JSONL and the report.

The split hashes each near-duplicate cluster with the seed, so a post and its near-copies always
land in the same split, and the same input gives the same files on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from localft.atomic import atomic_write_json, atomic_write_text
from localft.config import DataSpec
from localft.data.dedup import normalize
from localft.data.load import describe_inputs, import_posts, input_paths
from localft.data.prompts import chat_row, default_system_prompt, keyword_request
from localft.data.report import DataReport, histogram
from localft.data.residue import find_residue
from localft.events import Emit, Stage

SPLITS = ("train", "valid", "test")
STAGE_STEPS = 4


def split_groups(keys: list[str], groups: list[int], spec: DataSpec) -> list[str]:
    """The split of each row: clusters in seeded-hash order fill test, then valid, then train."""
    n = len(keys)
    n_test, n_valid = round(n * spec.test_fraction), round(n * spec.valid_fraction)
    while n_test + n_valid >= n and (n_test or n_valid):  # always leave something to train on
        n_test, n_valid = (n_test - 1, n_valid) if n_test >= n_valid else (n_test, n_valid - 1)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    # A cluster is named by its first kept member: cluster ids index the posts before dedup
    # dropped any, so they are not positions in `keys`.
    order = sorted(
        members,
        key=lambda g: hashlib.sha256(f"{spec.seed}\0{normalize(keys[members[g][0]])}".encode()).hexdigest(),
    )
    out = [""] * n
    filled = {"test": 0, "valid": 0}
    for g in order:
        split = "test" if filled["test"] < n_test else "valid" if filled["valid"] < n_valid else "train"
        for i in members[g]:
            out[i] = split
        if split != "train":
            filled[split] += len(members[g])
    return out


def build_dataset(
    source: Path | Sequence[Path],
    spec: DataSpec,
    out_dir: Path,
    *,
    tokenizer_dir: Path | None = None,
    max_seq_len: int | None = None,
    train_on: str = "completions",
    emit: Emit | None = None,
) -> DataReport:
    """Write out_dir/{train,valid,test}.jsonl and out_dir/report.json from one input or several
    (merged and deduplicated across inputs); returns the report."""
    label = describe_inputs(input_paths(source))

    def stage(done: int, detail: str) -> None:
        if emit:
            emit(Stage(name="import", done=done, total=STAGE_STEPS, detail=detail))

    stage(0, f"reading {label}")
    result = import_posts(source, spec)
    stage(1, f"{len(result.posts)} posts kept of {result.tally.read}")
    author = spec.author or result.author
    system_prompt = spec.system_prompt or default_system_prompt(result.platform, author)
    requests = _requests(result, spec, emit)
    rows = [chat_row(p, system_prompt, req) for p, req in zip(result.posts, requests, strict=True)]
    keys = [p.text for p in result.posts]
    assignment = split_groups(keys, result.groups, spec)
    order = sorted(
        range(len(rows)), key=lambda i: hashlib.sha256(f"{spec.seed}\0{i}\0{keys[i]}".encode()).hexdigest()
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_rows = {s: [rows[i] for i in order if assignment[i] == s] for s in SPLITS}
    for s in SPLITS:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in split_rows[s])
        atomic_write_text(out_dir / f"{s}.jsonl", text)
    stage(3, "wrote " + ", ".join(f"{s} {len(split_rows[s])}" for s in SPLITS))
    all_rows = [r for s in SPLITS for r in split_rows[s]]
    tokens, lengths = None, {"unit": "chars", "histogram": histogram([len(_reply(r)) for r in all_rows])}
    if tokenizer_dir is not None:
        tokens, token_lengths = token_stats(all_rows, tokenizer_dir, max_seq_len, train_on)
        lengths = {"unit": "tokens", "histogram": histogram(token_lengths)}
    report = DataReport(
        platform=result.platform,
        platform_name=result.platform_name,
        source=label,
        author=author,
        system_prompt=system_prompt,
        read=result.tally.read,
        kept=len(result.posts),
        dropped=dict(result.tally.dropped),
        changed=dict(result.tally.changed),
        splits={s: len(split_rows[s]) for s in SPLITS},
        by_source=result.by_source,
        lengths=lengths,
        tokens=tokens,
        samples=[{"request": _request(r), "reply": _reply(r)} for r in split_rows["train"][:3]],
        sources=[s.to_dict() for s in result.sources],
        residue=find_residue([_reply(r) for r in all_rows]),
    )
    atomic_write_json(out_dir / "report.json", report.to_dict())
    stage(STAGE_STEPS, f"{len(all_rows)} examples")
    return report


def _requests(result, spec: DataSpec, emit: Emit | None) -> list[str]:
    if spec.prompts == "model":
        from localft.data.model_prompts import model_requests

        return model_requests(result.posts, result.platform, spec, emit)
    return [keyword_request(p, p.platform or result.platform) for p in result.posts]


def _reply(row: dict) -> str:
    if "text" in row:
        return row["text"]
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"][-1]


def _request(row: dict) -> str:
    users = [m["content"] for m in row.get("messages", []) if m["role"] == "user"]
    return users[-1] if users else ""


def token_stats(
    rows: list[dict], tokenizer_dir: Path, max_seq_len: int | None, train_on: str = "completions"
) -> tuple[dict, list[int]]:
    """Token counts of each row as trained (chat template applied, the same mask) and a summary."""
    from localft.data.chat_render import folds_system
    from localft.data.chat_tokens import tokenize_row
    from localft.plan.catalog import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir, chat=any("messages" in r for r in rows))
    examples = [tokenize_row(tokenizer, r, max_len=1 << 30, train_on=train_on) for r in rows]
    lengths = [len(e.input_ids) for e in examples]
    ordered = sorted(lengths)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0
    summary = {
        "tokenizer": str(tokenizer_dir),
        "rows": len(lengths),
        "total": sum(lengths),
        "mean": sum(lengths) / len(lengths) if lengths else 0.0,
        "p95": p95,
        "max": max(lengths, default=0),
        "max_seq_len": max_seq_len,
        "over_max_seq_len": sum(1 for n in lengths if max_seq_len and n > max_seq_len),
        "trained": sum(e.trained_tokens for e in examples),
        # rows whose system prompt opens the first user turn: the template has no system role
        "system_folded": sum(folds_system(tokenizer, r["messages"]) for r in rows if "messages" in r),
    }
    return summary, lengths
