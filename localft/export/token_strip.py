"""Whitespace around special tokens: HF strips it where an added token says `lstrip`/`rstrip`;
llama.cpp reads no such flag from a GGUF and decides by the model's name (`general.name`): a name
containing "phi-3" or "phi3" strips the whitespace after every special token but <unk>, <s> and
<|endoftext|> (llama-vocab.cpp, llama-cpp-python 0.3.36); any other name strips none. The name
written is chosen so llama.cpp strips exactly where HF does, or the tokenizer is refused."""

from __future__ import annotations

import re

import gguf

PHI3_NAME = re.compile(r"phi-?3", re.IGNORECASE)
# llama.cpp looks these tokens up by text when it applies its Phi-3 rule (a missing one fails the load).
PHI3_KEPT = ("<unk>", "<s>", "<|endoftext|>")
PHI3_ALSO_STRIPPED = ("</s>",)
# Token types llama.cpp matches in text as special tokens (its cache_special_tokens).
MATCHED_TYPES = (gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED, gguf.TokenType.UNKNOWN)


def strips_after_specials(added: list[dict], tokens: list, types: list[int], where: str, refuse) -> bool:
    """Whether HF strips the whitespace after special tokens as llama.cpp's Phi-3 rule does (False:
    nowhere). `refuse(where, why)` makes the error for any other stripping, which llama.cpp cannot do."""
    if left := [a["content"] for a in added if a.get("lstrip")]:
        raise refuse(where, f"it strips the whitespace before {left[0]!r}, which llama.cpp does not")
    right = frozenset(a["content"] for a in added if a.get("rstrip"))
    if right and right != phi3_rule_strips(tokens, types):
        raise refuse(
            where,
            f"it strips the whitespace after {sorted(right)[0]!r}, which llama.cpp does only after every "
            "special token of a Phi-3 vocabulary",
        )
    return bool(right)


def phi3_rule_strips(tokens: list, types: list[int]) -> frozenset[str] | None:
    """The tokens llama.cpp's Phi-3 rule strips whitespace after, or None where a token the rule looks
    up is missing from the vocabulary (llama.cpp would then fail to load the file)."""
    if not all(t in tokens for t in (*PHI3_KEPT, *PHI3_ALSO_STRIPPED)):
        return None
    matched = {t for t, kind in zip(tokens, types, strict=True) if kind in MATCHED_TYPES}
    return frozenset((matched | set(PHI3_ALSO_STRIPPED)) - set(PHI3_KEPT))


def llama_cpp_name(name: str, strips_after_specials: bool) -> str:
    """`name`, changed only as far as llama.cpp must see it to strip whitespace where HF does."""
    if not strips_after_specials:  # the name must not trigger llama.cpp's Phi-3 rule
        return PHI3_NAME.sub(lambda m: m.group(0)[:3] + " 3", name)
    return name if PHI3_NAME.search(name) else f"{name} (phi3)"
