"""A small, dependency-free language guess from function words, for the optional language filter."""

from __future__ import annotations

import re

FUNCTION_WORDS = {
    "en": "the and is are was to of in that it for you with on this have not be but what",
    "de": "der die das und ist nicht ich ein eine zu mit sie es den von auf für auch sich wir",
    "fr": "le la les et est un une des du pas que qui pour dans sur avec ce je nous vous",
    "es": "el la los las y es un una que de no en por para con se lo como pero muy",
    "it": "il la le e è un una che di non per con sono del della ma come anche questo",
    "pt": "o a os as e é um uma que de não em para com se por mas como muito você",
    "nl": "de het een en is niet dat van op te zijn met voor ik je we ook maar",
    "sv": "och är att det som en ett inte på för med jag vi har till av om men",
}
_WORDS = {lang: set(words.split()) for lang, words in FUNCTION_WORDS.items()}


def guess_language(text: str) -> str | None:
    """The ISO code whose function words are most frequent, or None when too few words decide."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    if len(words) < 4:
        return None
    scores = {lang: sum(w in vocab for w in words) for lang, vocab in _WORDS.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] >= 2 else None
