"""Bluesky: the account repository export (repo.car), a CAR file of DAG-CBOR blocks read with libipld.

The commit block names the repository's DID and the root of its Merkle Search Tree, whose keys are
`collection/record-key`: app.bsky.feed.post records are posts, app.bsky.feed.repost records reposts.
"""

from __future__ import annotations

from localft.config import DataSpec
from localft.data.importers.json_values import as_dict, as_list, as_text
from localft.data.posts import Post, Tally
from localft.data.source import ExportSource, shown
from localft.errors import DataError

POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
PROFILE = "app.bsky.actor.profile"
LINK = "app.bsky.richtext.facet#link"
HINT = "export the repository again (Bluesky: Settings > Account > Export my data)"
MAX_TREE_DEPTH = 128  # a real tree is a handful of levels; deeper means a damaged or hostile file


def detect(src: ExportSource) -> bool:
    return bool(_car_files(src))


def _car_files(src: ExportSource) -> list[str]:
    return sorted(n for n in src.names() if n.lower().endswith(".car"))


def read_bluesky(src: ExportSource, spec: DataSpec, tally: Tally) -> tuple[list[Post], str | None]:
    files = _car_files(src) or (src.names() if src.is_single_file else [])
    if not files:
        raise DataError(f"{src.path} has no .car file; pass the repo.car file Bluesky exports")
    posts: list[Post] = []
    author = None
    for name in files:
        did, records = read_repository(src.read_bytes(name), src.label(name))
        for key, record in records:
            collection, _, rkey = key.partition("/")
            if collection == PROFILE and rkey == "self":
                author = author or as_text(record.get("displayName")).strip() or None
            if collection == REPOST:
                tally.read += 1
                tally.drop("reposts")
            elif collection == POST:
                tally.read += 1
                post = _post(record, did, key, name, spec, tally)
                if post is not None:
                    posts.append(post)
    return posts, author


def _post(record: dict, did: str, key: str, name: str, spec: DataSpec, tally: Tally) -> Post | None:
    parent = as_text(as_dict(as_dict(record.get("reply")).get("parent")).get("uri"))
    own_thread = parent.startswith(f"at://{did}/")
    if parent and not own_thread and not spec.include_replies:
        tally.drop("replies to others")
        return None
    text = post_text(record)
    if not text.strip():
        tally.drop("media without text")
        return None
    return Post(
        text=text,
        source_id=f"at://{did}/{key}",
        date=as_text(record.get("createdAt")),
        parent_id=parent if own_thread else "",
        meta={"file": name, "langs": [x for x in as_list(record.get("langs")) if isinstance(x, str)]},
    )


def post_text(record: dict) -> str:
    """The post's text with each link facet's shortened label ("example.com/blog/pag...") replaced by its URL.

    Facet offsets count UTF-8 bytes, so the replacement works on the encoded text."""
    text = as_text(record.get("text"))
    data = text.encode()
    spans = []
    for facet in map(as_dict, as_list(record.get("facets"))):
        index = as_dict(facet.get("index"))
        start, end = index.get("byteStart"), index.get("byteEnd")
        uri = next(
            (
                as_text(f.get("uri"))
                for f in map(as_dict, as_list(facet.get("features")))
                if f.get("$type") == LINK
            ),
            "",
        )
        if uri and type(start) is int and type(end) is int and 0 <= start < end <= len(data):
            spans.append((start, end, uri))
    out, pos = [], 0
    for start, end, uri in sorted(spans):
        if start < pos:
            continue  # overlapping facets: keep the first
        out += [data[pos:start], uri.encode()]
        pos = end
    out.append(data[pos:])
    try:
        return b"".join(out).decode()
    except UnicodeDecodeError:  # offsets inside a character: the file is off, keep the text as written
        return text


def read_repository(data: bytes, label: str) -> tuple[str, list[tuple[str, dict]]]:
    """(the account's DID, [(collection/record-key, record), ...] in key order) from a repo CAR file."""
    import libipld

    try:
        header, blocks = libipld.decode_car(data)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        reason = shown(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 80)
        raise DataError(f"{label} is not a readable CAR file ({reason}); {HINT}") from None
    roots = as_list(as_dict(header).get("roots"))
    commit = as_dict(blocks.get(roots[0])) if roots and isinstance(roots[0], bytes) else {}
    did, tree = as_text(commit.get("did")), commit.get("data")
    if not did.startswith("did:") or not isinstance(tree, bytes):
        raise DataError(f"{label} is a CAR file but not an account repository (no commit block); {HINT}")
    records = []
    for key, cid in _walk_tree(blocks, tree, label):
        record = blocks.get(cid)
        if isinstance(record, dict):
            records.append((key, record))
    return did, records


def _walk_tree(blocks: dict, root: bytes, label: str) -> list[tuple[str, bytes]]:
    """The (key, record CID) entries of a Merkle Search Tree, in order: left subtree, then each entry
    followed by its right subtree. Keys are prefix-compressed against the previous entry in a node."""
    out: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()

    def visit(cid, depth: int) -> None:
        if not isinstance(cid, bytes) or cid in seen:
            return
        if depth > MAX_TREE_DEPTH:
            raise DataError(f"{label}: the record tree is nested too deeply; {HINT}")
        seen.add(cid)
        node = as_dict(blocks.get(cid))
        visit(node.get("l"), depth + 1)
        key = b""
        for entry in map(as_dict, as_list(node.get("e"))):
            prefix, suffix = entry.get("p"), entry.get("k")
            if type(prefix) is not int or not isinstance(suffix, bytes) or not 0 <= prefix <= len(key):
                raise DataError(f"{label}: a record-tree entry is malformed; {HINT}")
            key = key[:prefix] + suffix
            if isinstance(entry.get("v"), bytes):
                out.append((key.decode("utf-8", "replace"), entry["v"]))
            visit(entry.get("t"), depth + 1)

    visit(root, 0)
    return out
