"""Write JSON the way Meta's exports (Facebook, Instagram, Threads) do: each UTF-8 byte of a string as its
own \\u00XX escape, so "é" is written "\\u00c3\\u00a9". Used by the sample exports and the tests."""

from __future__ import annotations

import json


def meta_json(value, indent: int | None = 2) -> str:
    def mangle(v):
        if isinstance(v, str):
            return v.encode("utf-8").decode("latin-1")
        if isinstance(v, list):
            return [mangle(x) for x in v]
        return {mangle(k): mangle(x) for k, x in v.items()} if isinstance(v, dict) else v

    return json.dumps(mangle(value), indent=indent, ensure_ascii=True)
