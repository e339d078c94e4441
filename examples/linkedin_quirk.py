"""Write a post's text the way LinkedIn's Shares.csv holds it: every line of a multi-line ShareCommentary
wrapped in literal quotes, so after a CSV parse each line break reads `"` newline `"` (an empty line
`""`). The CSV writer then doubles those quotes like any other. Used by the sample exports and the tests."""

from __future__ import annotations


def linkedin_commentary(text: str, newline: str = "\n", wrap_field: bool = False) -> str:
    """`text` as the ShareCommentary value before CSV quoting; `wrap_field` also wraps the first and
    last line, as a whole-field-wrapped file does."""
    body = f'"{newline}"'.join(text.split("\n"))
    return f'"{body}"' if wrap_field else body
