"""import_posts: read an export with the right importer, then clean and filter it, counting every step.

An import that keeps nothing is an error naming the step that dropped the last post.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from localft.config import DataSpec
from localft.data.clean import clean_text, join_threads
from localft.data.dedup import duplicate_clusters
from localft.data.importers import IMPORTERS, PLATFORM_NAMES, detect_format
from localft.data.importers.hf import is_local_dataset, read_hf
from localft.data.language import guess_language
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource, json_limit_error
from localft.errors import DataError

HINTS = {
    "retweets": "the archive holds only retweets, which are not your writing",
    "replies to others": "pass --include-replies to keep replies",
    "private posts": "pass --include-private to keep followers-only posts",
    "direct posts": "pass --include-private to keep direct messages",
    "boosts": "the archive holds only boosts, which are not your writing",
    "drafts": "publish a post first: drafts are not imported",
    "reshares without commentary": "the export holds only reshares with no text of your own",
    "empty": "the files hold no text",
    "empty after cleaning": "pass --urls keep or --no-scrub-pii if the posts are only links or contact details",
    "exact duplicates": "pass --no-dedup to keep duplicates",
    "near-duplicates": "pass --no-dedup or raise --near-dup-threshold",
}
ROLE_ORDER_HINT = (
    "chat rows must alternate user and assistant turns, after an optional system turn, and end with the reply"
)


@dataclass
class ImportResult:
    posts: list[Post]
    platform: (
        str  # importer name: linkedin, x, mastodon, substack, text, jsonl, csv, chat, completions, textrows
    )
    source: Path
    author: str | None = None
    tally: Tally = field(default_factory=Tally)
    groups: list[int] = field(default_factory=list)  # near-duplicate cluster per post, for the split

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, self.platform)

    @property
    def by_source(self) -> dict[str, int]:
        return dict(Counter(p.meta.get("file", "") for p in self.posts))


def import_posts(source: Path, spec: DataSpec) -> ImportResult:
    """Read, clean and filter `source`; raises DataError with a one-line reason on bad or empty input."""
    source = Path(source)
    tally = Tally()
    try:
        if spec.format == "hf" or (spec.format == "auto" and is_local_dataset(source)):
            platform, author = "hf", None
            posts, _ = read_hf(str(source), spec, tally)
        else:
            with ExportSource(source) as src:
                platform = detect_format(src, spec.format)
                posts, author = IMPORTERS[platform](src, spec, tally)
    except (RecursionError, ValueError) as exc:  # JSON beyond Python's limits, in any importer
        if (error := json_limit_error(exc, str(source))) is None:
            raise
        raise error from None
    if tally.read == 0:
        raise DataError(
            f"{source} holds no posts ({PLATFORM_NAMES[platform]} export with no entries); export again"
        )
    _check(posts, source, tally, "reading")
    if spec.join_threads:
        posts = join_threads(posts, tally)
    posts = [_clean(p, spec, tally) for p in posts]
    posts = _keep(posts, lambda p: bool(p.text.strip()), "empty after cleaning", tally, source)
    if spec.min_chars:
        reason = f"too short (< {spec.min_chars} chars)"
        posts = _keep(posts, lambda p: p.prepared or len(p.text) >= spec.min_chars, reason, tally, source)
    reason = f"too long (> {spec.max_chars} chars)"
    posts = _keep(posts, lambda p: p.prepared or len(p.text) <= spec.max_chars, reason, tally, source)
    if spec.language:
        lang = spec.language.lower()
        posts = _keep(
            posts,
            lambda p: p.prepared or guess_language(p.text) == lang,
            f"not in language {lang}",
            tally,
            source,
        )
    groups, why = duplicate_clusters([_dedup_key(p) for p in posts], spec.near_dup_threshold)
    if spec.dedup:
        keep = [i for i, w in enumerate(why) if not w]
        for label, code in (("exact duplicates", "exact"), ("near-duplicates", "near")):
            n = sum(1 for w in why if w == code)
            if n:
                tally.drop(label, n)
        posts, groups = [posts[i] for i in keep], [groups[i] for i in keep]
    return ImportResult(posts, platform, source, author, tally, groups)


def _dedup_key(post: Post) -> str:
    if post.messages is None:
        return post.text
    return "\n".join(m["content"] for m in post.messages)


def _clean(post: Post, spec: DataSpec, tally: Tally) -> Post:
    def clean(text: str) -> str:
        return clean_text(text, scrub=spec.scrub_pii, handles=spec.scrub_handles, urls=spec.urls, tally=tally)

    if post.messages is None:
        post.text = clean(post.text)
    else:
        post.messages = [{**m, "content": clean(m["content"])} for m in post.messages]
        post.text = [m["content"] for m in post.messages if m["role"] == "assistant"][-1]
    return post


def _keep(posts: list[Post], keep, reason: str, tally: Tally, source: Path) -> list[Post]:
    kept = [p for p in posts if keep(p)]
    if len(kept) < len(posts):
        tally.drop(reason, len(posts) - len(kept))
    _check(kept, source, tally, reason)
    return kept


def _check(posts: list[Post], source: Path, tally: Tally, step: str) -> None:
    if posts:
        return
    if step == "reading":
        reasons = ", ".join(f"{k}: {v}" for k, v in tally.dropped.items())
        last = next(reversed(tally.dropped), "")
        hint = HINTS.get(last, ROLE_ORDER_HINT if last.startswith("chat rows") else "check the export")
        raise DataError(
            f"no posts left in {source}: all {tally.read} entries were skipped ({reasons}); {hint}"
        )
    if step.startswith("too short"):
        hint = "lower --min-chars"
    elif step.startswith("too long"):
        hint = "raise --max-chars"
    elif step.startswith("not in language"):
        hint = "check --language or leave it unset"
    else:
        hint = HINTS.get(step, "check the export")
    raise DataError(
        f"no posts left in {source}: the '{step}' filter dropped the last {tally.dropped.get(step, 0)}; {hint}"
    )
