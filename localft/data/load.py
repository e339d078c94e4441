"""import_posts: read one export or several with the right importers, then clean, filter and deduplicate
the merged posts, counting every step per input. An import that keeps nothing is an error naming the
step that dropped the last post.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
    "replies": "pass --include-replies to keep replies",
    "comments": "pass --include-replies to keep Reddit comments",
    "posts on others' timelines": "pass --include-replies to keep posts on other people's timelines",
    "reposts": "the repository holds only reposts, which are not your writing",
    "media without text": "the export holds only photos or videos without text",
    "shares without text": "the export holds only shares and uploads with no text of your own",
    "article drafts": "publish an article first: drafts are not imported",
    "deleted or empty": "the export holds only deleted or empty posts",
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
class SourceRead:
    """One input of an import: what it is and what each step did to its posts."""

    path: Path
    platform: str  # importer name: linkedin, x, mastodon, ..., chat, completions, textrows, hf
    author: str | None = None
    tally: Tally = field(default_factory=Tally)
    kept: int = 0

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, self.platform)

    def to_dict(self) -> dict:
        return {
            "source": str(self.path), "platform": self.platform, "platform_name": self.platform_name,
            "read": self.tally.read, "kept": self.kept, "dropped": dict(self.tally.dropped),
            "changed": dict(self.tally.changed),
        }  # fmt: skip


@dataclass
class ImportResult:
    posts: list[Post]
    sources: list[SourceRead]
    groups: list[int] = field(default_factory=list)  # near-duplicate cluster per post, for the split

    @property
    def platform(self) -> str:
        """The importer name, or "mixed" when the inputs come from several platforms."""
        names = {s.platform for s in self.sources}
        return names.pop() if len(names) == 1 else "mixed"

    @property
    def platform_name(self) -> str:
        return " + ".join(dict.fromkeys(s.platform_name for s in self.sources))

    @property
    def source(self) -> Path:
        return self.sources[0].path

    @property
    def author(self) -> str | None:
        return next((s.author for s in self.sources if s.author), None)

    @property
    def tally(self) -> Tally:
        """The counts of all inputs together."""
        return total_tally(self.sources)

    @property
    def by_source(self) -> dict[str, int]:
        if len(self.sources) == 1:
            return dict(Counter(p.meta.get("file", "") for p in self.posts))
        return dict(
            Counter(f"{self.sources[p.origin].path.name}: {p.meta.get('file', '')}" for p in self.posts)
        )


def total_tally(sources: list[SourceRead]) -> Tally:
    total = Tally()
    for s in sources:
        total.read += s.tally.read
        for reason, n in s.tally.dropped.items():
            total.drop(reason, n)
        for what, n in s.tally.changed.items():
            total.change(what, n)
    return total


def input_paths(source: Path | str | Sequence[Path | str]) -> list[Path]:
    """One input or several, as a list of paths."""
    return [Path(source)] if isinstance(source, (str, Path)) else [Path(s) for s in source]


def describe_inputs(paths: list[Path]) -> str:
    """How errors and reports name the input(s)."""
    return str(paths[0]) if len(paths) == 1 else ", ".join(str(p) for p in paths)


def read_source(path: Path, spec: DataSpec) -> tuple[list[Post], SourceRead]:
    """Read one input with its importer (the requested one or the one its files identify)."""
    tally = Tally()
    try:
        if spec.format == "hf" or (spec.format == "auto" and is_local_dataset(path)):
            read = SourceRead(path, "hf", None, tally)
            posts, _ = read_hf(str(path), spec, tally)
        else:
            with ExportSource(path) as src:
                platform = detect_format(src, spec.format)
                posts, author = IMPORTERS[platform](src, spec, tally)
            read = SourceRead(path, platform, author, tally)
    except (RecursionError, ValueError) as exc:  # JSON beyond Python's limits, in any importer
        if (error := json_limit_error(exc, str(path))) is None:
            raise
        raise error from None
    if tally.read == 0:
        raise DataError(f"{path} holds no posts ({read.platform_name} export with no entries); export again")
    for p in posts:
        p.platform = read.platform
    return posts, read


def import_posts(source: Path | str | Sequence[Path | str], spec: DataSpec) -> ImportResult:
    """Read, clean and filter one input or several (merged into one set of posts, deduplicated across
    inputs: the first input's copy of a cross-posted text is kept); raises DataError with a one-line
    reason on bad or empty input."""
    paths = input_paths(source)
    if not paths:
        raise DataError("no input given; pass an export archive, folder or file")
    label = describe_inputs(paths)
    sources: list[SourceRead] = []
    posts: list[Post] = []
    for origin, path in enumerate(paths):
        found, read = read_source(path, spec)
        for p in found:
            p.origin = origin
        if spec.join_threads:  # threads never span inputs: ids are only unique within one export
            found = join_threads(found, read.tally)
        sources.append(read)
        posts += found
    _check(posts, label, total_tally(sources), "reading")
    posts = [_clean(p, spec, sources[p.origin].tally) for p in posts]
    posts = _keep(posts, lambda p: bool(p.text.strip()), "empty after cleaning", sources, label)
    if spec.min_chars:
        reason = f"too short (< {spec.min_chars} chars)"
        posts = _keep(posts, lambda p: p.prepared or len(p.text) >= spec.min_chars, reason, sources, label)
    reason = f"too long (> {spec.max_chars} chars)"
    posts = _keep(posts, lambda p: p.prepared or len(p.text) <= spec.max_chars, reason, sources, label)
    if spec.language:
        lang = spec.language.lower()

        def in_language(p: Post) -> bool:
            return p.prepared or guess_language(p.text) == lang

        posts = _keep(posts, in_language, f"not in language {lang}", sources, label)
    groups, why = duplicate_clusters([_dedup_key(p) for p in posts], spec.near_dup_threshold)
    if spec.dedup:
        for reason, code in (("exact duplicates", "exact"), ("near-duplicates", "near")):
            for p, w in zip(posts, why, strict=True):
                if w == code:
                    sources[p.origin].tally.drop(reason)
        keep = [i for i, w in enumerate(why) if not w]
        posts, groups = [posts[i] for i in keep], [groups[i] for i in keep]
    for p in posts:
        sources[p.origin].kept += 1
    return ImportResult(posts, sources, groups)


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


def _keep(posts: list[Post], keep, reason: str, sources: list[SourceRead], label: str) -> list[Post]:
    kept = []
    for p in posts:
        if keep(p):
            kept.append(p)
        else:
            sources[p.origin].tally.drop(reason)
    _check(kept, label, total_tally(sources), reason)
    return kept


def _check(posts: list[Post], source: str, tally: Tally, step: str) -> None:
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
