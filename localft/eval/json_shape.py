"""Scores for structured answers: is the reply strict JSON, with the expected keys and values?"""

from __future__ import annotations

import json


def parse_strict(text: str) -> dict | None:
    """The reply as a JSON object, or None. Strict: the whole reply must be one object."""
    try:
        value = json.loads(text.strip())
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _same(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


def json_scores(replies: list[str], references: list[str]) -> dict:
    """valid_json_rate: replies that parse as an object; key_match_rate: objects with exactly the
    reference keys; field_accuracy: reference fields reproduced with an equal value (invalid
    replies score 0 on all their fields)."""
    valid = keys_ok = fields = fields_right = 0
    for reply, ref_text in zip(replies, references, strict=True):
        ref = parse_strict(ref_text) or {}
        got = parse_strict(reply)
        fields += len(ref)
        if got is None:
            continue
        valid += 1
        keys_ok += set(got) == set(ref)
        fields_right += sum(1 for k, v in ref.items() if k in got and _same(got[k], v))
    n = len(replies)
    return {
        "valid_json_rate": valid / n if n else 0.0,
        "key_match_rate": keys_ok / n if n else 0.0,
        "field_accuracy": fields_right / fields if fields else 0.0,
    }
