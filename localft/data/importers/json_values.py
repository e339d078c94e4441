"""Defensive accessors for JSON read from exports: a value of the wrong type reads as empty, never crashes."""

from __future__ import annotations


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_text(value) -> str:
    return value if isinstance(value, str) else ""
