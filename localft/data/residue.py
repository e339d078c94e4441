"""Format debris left in kept posts: what an importer (or an export format nobody has seen yet) failed to
undo. The data report counts the posts per kind and shows one, so it is seen before training."""

from __future__ import annotations

import re

QUOTE_ONLY_LINE = re.compile(r'(?m)^[ \t]*"+[ \t]*$')
HTML = re.compile(
    r"</?(?:p|br|div|span|a|b|i|u|em|strong|li|ul|ol|h[1-6]|blockquote|pre|code|img|figure)\b[^<>]*>"
    r"|&(?:amp|lt|gt|quot|apos|nbsp|#\d{1,7}|#x[0-9a-fA-F]{1,6});",
    re.IGNORECASE,
)
# UTF-8 read as Latin-1 or cp1252: "Ã©" for "é", "Â " for a no-break space, "â€™" for "’", "ðŸ" for emoji
MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]|â€|ðŸ")
KINDS = {
    "quote-only lines": "posts with a line that is only quotes",
    "quote-wrapped lines": "posts whose lines start or end with a quote, in most multi-line posts",
    "html": "posts with HTML tags or entities",
    "mojibake": "posts with mojibake (UTF-8 read as Latin-1)",
}
EXAMPLE_CHARS = 80


def _excerpt(text: str, start: int, end: int) -> str:
    """The match with a little context, on one line."""
    lo, hi = max(0, start - 30), min(len(text), end + 30)
    piece = text[lo:hi].replace("\n", " ⏎ ")
    return ("…" if lo else "") + piece[:EXAMPLE_CHARS] + ("…" if hi < len(text) else "")


def _wrapped_lines(text: str) -> re.Match | None:
    """The first quote at a line's start or end, when most lines of a multi-line post have one."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return None
    quoted = [line for line in lines if line.strip().startswith('"') or line.strip().endswith('"')]
    if len(quoted) * 2 <= len(lines):
        return None
    return re.search(r'(?m)^[ \t]*"|"[ \t]*$', text)


def find_residue(texts: list[str]) -> list[dict]:
    """[{kind, what, posts, example}] for each kind of debris found, in KINDS order."""
    found: dict[str, list] = {kind: [] for kind in KINDS}
    multi_line = 0
    for text in texts:
        multi_line += len([line for line in text.split("\n") if line.strip()]) >= 2
        for kind, match in (
            ("quote-only lines", QUOTE_ONLY_LINE.search(text)),
            ("quote-wrapped lines", _wrapped_lines(text)),
            ("html", HTML.search(text)),
            ("mojibake", MOJIBAKE.search(text)),
        ):
            if match:
                found[kind].append(_excerpt(text, match.start(), match.end()))
    if len(found["quote-wrapped lines"]) * 2 <= multi_line:
        found["quote-wrapped lines"] = []  # a few posts quoting whole lines are writing, not debris
    return [
        {"kind": kind, "what": KINDS[kind], "posts": len(examples), "example": examples[0]}
        for kind, examples in found.items()
        if examples
    ]
