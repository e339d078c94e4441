"""Turn a post into a chat example: a persona system prompt, a request derived from the post, the post.

The default request is local and fast: the post's two strongest keyword phrases (at most one from
its hashtags, the rest from repeated adjacent content words) in "Write a LinkedIn post about X and Y."
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

from localft.data.posts import Post

PLATFORM_NOUNS = {
    "linkedin": "LinkedIn post", "x": "post for X", "mastodon": "Mastodon post", "substack": "Substack post",
    "threads": "Threads post", "facebook": "Facebook post", "bluesky": "Bluesky post", "reddit": "Reddit post",
    "text": "post", "jsonl": "post", "csv": "post",
}  # fmt: skip
# Where a platform has another form beside its posts, the request names it, so the model learns each form.
KIND_NOUNS = {("x", "thread"): "thread for X", ("linkedin", "article"): "LinkedIn article",
              ("reddit", "comment"): "Reddit comment"}  # fmt: skip
_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*[^\W\d_]|[^\W\d_]")
_HASHTAG = re.compile(r"(?<![\w#])#([A-Za-z][A-Za-z0-9_]{2,})")
_PLACEHOLDER = re.compile(r"\[(?:email|phone|address|link)\]|@user\b|https?://\S+|www\.\S+")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    return frozenset((Path(__file__).with_name("stopwords.txt")).read_text(encoding="utf-8").split())


def default_system_prompt(platform: str, author: str | None) -> str:
    noun = PLATFORM_NOUNS.get(platform, "post")
    who = f"You are {author.rstrip('.')}" if author else "You are the author"
    return f"{who}. Write each {noun} in your own voice."


def split_hashtag(tag: str) -> str:
    """#RemoteWork -> remote work; #OnCall -> on call; #DevOps -> DevOps; #ai -> ai."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", tag)
    if len(words) < 2 or all(len(w) <= 3 for w in words):
        return tag if any(c.isupper() for c in tag[1:]) else tag.lower()  # DevOps, SRE stay as written
    return " ".join(w.lower() for w in words)


def keyword_phrases(text: str, limit: int = 2) -> list[str]:
    """The post's strongest topic phrases, strongest first."""
    text = _PLACEHOLDER.sub(" ", text)
    stop = stopwords()
    scores: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for tag in _HASHTAG.findall(text):
        phrase = split_hashtag(tag)
        scores[phrase] += 3
        first_seen.setdefault(phrase, -1)
    body = _HASHTAG.sub(" ", text)
    display: dict[str, str] = {}
    sentences = [x for x in re.split(r"[.!?\n:;,()\"“”]+", body) if x.strip()]
    for n, sentence in enumerate(sentences):
        weight = 2.0 if n == 0 else 1.0  # the opening line usually names the topic
        run: list[str] = []
        for word in [*_WORD.findall(sentence), ""]:
            low = word.lower().replace("’", "'")
            if word and low not in stop and len(low) > 2 and not low.endswith("'s"):
                run.append(low if not word.isupper() or len(word) > 5 else word)
                continue
            for size, bonus in ((2, 2.5), (1, 1.0)):  # adjacent content words make the best phrases
                for i in range(len(run) - size + 1):
                    words = run[i : i + size]
                    key = " ".join(_stem(w) for w in words)
                    display.setdefault(key, " ".join(words))
                    scores[key] += bonus * weight
                    first_seen.setdefault(key, len(first_seen))
            run = []
    if not scores:
        return []
    ranked = sorted(scores, key=lambda p: (-scores[p], first_seen[p]))
    chosen: list[str] = []
    tags_taken = 0
    for phrase in ranked:
        words = set(phrase.lower().split())
        if any(words & set(c.lower().split()) for c in chosen) or (first_seen[phrase] < 0 and tags_taken):
            continue
        tags_taken += first_seen[phrase] < 0
        chosen.append(phrase)
        if len(chosen) == limit:
            break
    return [display.get(c, c) for c in chosen]


def _stem(word: str) -> str:
    """Plural and singular count as one phrase: requests ~ request."""
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def request_noun(post: Post, platform: str) -> str:
    """What the request asks for: "LinkedIn post", "LinkedIn article", "thread for X", "Reddit post in r/...".

    `platform` is the post's own platform when it has one (several inputs), else the import's."""
    platform = post.platform or platform
    noun = KIND_NOUNS.get((platform, post.kind)) or PLATFORM_NOUNS.get(platform, "post")
    subreddit = post.meta.get("subreddit")
    return f"{noun} in r/{subreddit}" if platform == "reddit" and subreddit else noun


def keyword_request(post: Post, platform: str) -> str:
    noun = request_noun(post, platform)
    if post.title:
        return f"Write a {noun} titled “{post.title}”."
    phrases = keyword_phrases(post.text)
    article = "an" if noun[0].lower() in "aeiou" else "a"
    if not phrases:
        return f"Write {article} {noun}."
    return f"Write {article} {noun} about {' and '.join(phrases)}."


def chat_row(post: Post, system_prompt: str, request: str) -> dict:
    """The JSONL row for one post: prepared rows keep their own shape, posts become a 3-turn chat."""
    meta = {"id": post.source_id, "date": post.date, "kind": post.kind}
    if post.kind == "text":
        return {"text": post.text, "meta": meta}
    if post.messages is not None:
        return {"messages": post.messages, "meta": meta}
    messages = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": request},
        {"role": "assistant", "content": post.text},
    ]
    return {"messages": messages, "meta": meta}
