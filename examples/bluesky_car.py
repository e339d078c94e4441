"""Write a Bluesky account repository (repo.car) the way a PDS exports it, for the sample exports and tests.

CAR v1: a DAG-CBOR header {roots: [commit], version: 1}, then length-prefixed (CID, block) pairs. The
commit points at the root of a Merkle Search Tree whose keys are `collection/record-key`; a key's layer
is the number of leading zero bit-pairs of its SHA-256, and keys in a node are prefix-compressed.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import libipld

SORTABLE_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"


def cid_for(block: bytes) -> bytes:
    """CIDv1, DAG-CBOR codec (0x71), SHA-256 multihash: the binary form libipld reads and writes as a link."""
    return b"\x01\x71\x12\x20" + hashlib.sha256(block).digest()


def tid(when: datetime, clock_id: int = 0) -> str:
    """A record key: microseconds since the epoch and a clock id, in sortable base32 (13 characters)."""
    micros = int(when.astimezone(UTC).timestamp() * 1_000_000)
    value = (micros << 10) | (clock_id & 0x3FF)
    return "".join(SORTABLE_BASE32[(value >> (60 - 5 * i)) & 31] for i in range(13))


def _layer(key: bytes) -> int:
    digest, zeros = hashlib.sha256(key).digest(), 0
    for byte in digest:
        for shift in (6, 4, 2, 0):
            if (byte >> shift) & 3:
                return zeros
            zeros += 1
    return zeros


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Blocks:
    def __init__(self):
        self.order: list[tuple[bytes, bytes]] = []

    def put(self, value) -> bytes:
        data = libipld.encode_dag_cbor(value)
        cid = cid_for(data)
        self.order.append((cid, data))
        return cid


def _tree(blocks: _Blocks, entries: list[tuple[bytes, bytes, int]], layer: int) -> bytes | None:
    """The node for `entries` (key, record CID, key layer; sorted, none above `layer`); its CID."""
    if not entries:
        return None
    if layer < 0 or all(kl < layer for _, _, kl in entries):
        return blocks.put({"l": _tree(blocks, entries, layer - 1), "e": []}) if layer >= 0 else None
    node_entries: list[dict] = []
    left, pending, previous = None, [], b""
    for key, cid, key_layer in entries + [(b"", b"", layer)]:  # a sentinel flushes the last subtree
        if key_layer < layer:
            pending.append((key, cid, key_layer))
            continue
        subtree = _tree(blocks, pending, layer - 1)
        if node_entries:
            node_entries[-1]["t"] = subtree
        else:
            left = subtree
        pending = []
        if key:
            shared = next(
                (i for i, (a, b) in enumerate(zip(previous, key, strict=False)) if a != b),
                min(len(previous), len(key)),
            )
            node_entries.append({"p": shared, "k": key[shared:], "v": cid, "t": None})
            previous = key
    return blocks.put({"l": left, "e": node_entries})


def repo_car(did: str, records: list[tuple[str, str, dict]], rev: str = "3lbmqrhfwqc2a") -> bytes:
    """The CAR bytes of a repository holding `records` ((collection, record key, record) each)."""
    blocks = _Blocks()
    keyed = sorted(((f"{c}/{k}".encode(), blocks.put(r)) for c, k, r in records), key=lambda e: e[0])
    entries = [(key, cid, _layer(key)) for key, cid in keyed]
    root = _tree(blocks, entries, max((kl for _, _, kl in entries), default=0))
    if root is None:
        root = blocks.put({"l": None, "e": []})
    sig = hashlib.sha512(did.encode()).digest()  # a stand-in signature: readers do not verify it
    commit = blocks.put({"did": did, "version": 3, "data": root, "rev": rev, "prev": None, "sig": sig})
    header = libipld.encode_dag_cbor({"roots": [commit], "version": 1})
    out = [_varint(len(header)), header]
    # commit first, then tree nodes and records, as a PDS streams them
    for cid, data in [blocks.order[-1], *blocks.order[:-1]]:
        out += [_varint(len(cid) + len(data)), cid, data]
    return b"".join(out)
