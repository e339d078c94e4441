"""Cleaning steps: PII placeholders, the URL policy, length limits, and joining self-reply threads.

Links are found first so that digits and @ signs inside a URL are never mistaken for PII.
"""

from __future__ import annotations

import re

from localft.data.posts import Post, Tally

URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
EMAIL = re.compile(r"(?<![\w.+@-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,5}){1,4}(?![\w-])"
)
ADDRESS = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Square|Sq)\b\.?"
    r"|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|weg|gasse|allee|platz)\s+\d{1,4}[a-z]?\b"
)
HANDLE = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{1,30}(?:@[A-Za-z0-9.-]+\.[A-Za-z]{2,})?")
PLACEHOLDERS = {
    "email": "[email]",
    "phone": "[phone]",
    "address": "[address]",
    "handle": "@user",
    "url": "[link]",
}
_DATE_LIKE = re.compile(r"^\d{4}[-.]\d{1,2}[-.]\d{1,2}$|^\d{1,2}[-.]\d{1,2}[-.]\d{2,4}$")


def _trim_url(url: str) -> str:
    return url.rstrip(".,;:!?)]}'\u2019\u201d")


def _phone(match: re.Match) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if digits < 9 or digits > 15 or _DATE_LIKE.match(text):
        return text
    return PLACEHOLDERS["phone"]


def scrub_pii(text: str, handles: bool, tally: Tally) -> str:
    """Emails, phone numbers, street addresses (and @handles if asked) become placeholders."""
    for what, pattern, label in (("email", EMAIL, "emails"), ("address", ADDRESS, "addresses")):
        text, n = pattern.subn(PLACEHOLDERS[what], text)
        tally.change(f"{label} replaced", n)
    before = text.count(PLACEHOLDERS["phone"])
    text = PHONE.sub(_phone, text)
    tally.change("phones replaced", text.count(PLACEHOLDERS["phone"]) - before)
    if handles:
        text, n = HANDLE.subn(PLACEHOLDERS["handle"], text)
        tally.change("handles replaced", n)
    return text


def clean_text(text: str, *, scrub: bool, handles: bool, urls: str, tally: Tally) -> str:
    """Apply the PII and URL policy outside links, then tidy whitespace (characters stay exact)."""
    pieces, last = [], 0
    for m in URL.finditer(text):
        url = _trim_url(m.group(0))
        end = m.start() + len(url)
        pieces.append(("text", text[last : m.start()]))
        pieces.append(("url", url))
        last = end
    pieces.append(("text", text[last:]))
    out: list[str] = []
    for kind, piece in pieces:
        if kind == "url" and urls == "strip" and out:
            out[-1] = out[-1].rstrip(" \t")  # no double space where the link was
        if kind == "url":
            tally.change(f"links {'removed' if urls == 'strip' else 'replaced'}", int(urls != "keep"))
            out.append(piece if urls == "keep" else "" if urls == "strip" else PLACEHOLDERS["url"])
        else:
            out.append(scrub_pii(piece, handles, tally) if scrub else piece)
    return tidy("".join(out))


def tidy(text: str) -> str:
    """Trailing spaces off each line, at most one blank line in a row; nothing else changes."""
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def join_threads(posts: list[Post], tally: Tally) -> list[Post]:
    """Each self-reply chain becomes one post (parts joined by a blank line, dated by its first part)."""
    by_id = {p.source_id: p for p in posts}
    children: dict[str, list[Post]] = {}
    for p in posts:
        if p.parent_id and p.parent_id in by_id:
            children.setdefault(p.parent_id, []).append(p)
    out = []
    for p in posts:
        if p.parent_id and p.parent_id in by_id:
            continue  # emitted inside its root's thread
        parts, queue, seen = [p], list(children.get(p.source_id, [])), {p.source_id}
        while queue:
            child = queue.pop(0)
            if child.source_id in seen:
                continue
            seen.add(child.source_id)
            parts.append(child)
            queue[:0] = sorted(children.get(child.source_id, []), key=lambda c: c.date)
        if len(parts) > 1:
            tally.change("thread parts joined", len(parts) - 1)
            p.text = "\n\n".join(part.text for part in parts if part.text.strip())
            p.kind = "thread"
            p.meta["thread_ids"] = [part.source_id for part in parts]
        out.append(p)
    return out
