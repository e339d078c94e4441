"""Archives and data files that attack the reader: bombs, lying headers, cuts, traversal, links,
deep nesting, bad text. Each builder writes into a folder and returns the path to pass."""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

MIB = 1 << 20
SHARES_HEADER = b"Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\n"


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream of `mib` MiB of zero bytes, built in milliseconds: one compressed
    block, flushed to a byte boundary, repeated (a compressed MiB of zeros is about 1 KB)."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = block.compress(b"\0" * MIB) + block.flush(zlib.Z_FULL_FLUSH)
    return one * mib + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def crc_of_zeros(mib: int) -> int:
    crc, chunk = 0, b"\0" * MIB
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return crc


def raw_zip(path: Path, name: str, data: bytes, declared_size: int, crc: int = 0) -> Path:
    """A one-member deflate zip whose headers state `declared_size` whatever `data` inflates to."""
    raw = name.encode()
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), declared_size, len(raw), 0
    )
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), declared_size,
        len(raw), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    offset = len(local) + len(raw) + len(data)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(raw), offset, 0)
    path.write_bytes(local + raw + data + central + raw + end)
    return path


def zip_bomb_lying_header(folder: Path, mib: int = 1536) -> Path:
    """A ~1.5 MB zip whose header says Shares.csv is 1,000 bytes; it inflates to 1.5 GiB."""
    return raw_zip(folder / "linkedin-bomb.zip", "Shares.csv", deflated_zeros(mib), declared_size=1000)


def zip_declared_huge(folder: Path, mib: int = 1024) -> Path:
    """An honest zip: Shares.csv is 1 GiB of zeros, and its header says so."""
    return raw_zip(
        folder / "linkedin-huge.zip", "Shares.csv", deflated_zeros(mib), mib * MIB, crc_of_zeros(mib)
    )


def tar_huge_member(folder: Path, mib: int = 600) -> Path:
    """A ~600 KB .tar.gz holding a 600 MiB Shares.csv (a CSV header, then zero bytes), written as a
    gzip stream of repeated compressed blocks so building it takes no time."""
    info = tarfile.TarInfo("Shares.csv")
    info.size = mib * MIB
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    data_start = SHARES_HEADER + b"\0" * (MIB - len(SHARES_HEADER))
    tail = b"\0" * (2 * 512 + (-info.size) % 512)  # member padding, then the end-of-archive blocks
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(header + data_start) + deflate.flush(zlib.Z_FULL_FLUSH)
    zeros = deflate.compress(b"\0" * MIB) + deflate.flush(zlib.Z_FULL_FLUSH)
    body += zeros * (mib - 1) + deflate.compress(tail) + deflate.flush()
    crc = zlib.crc32(header + data_start)
    for _ in range(mib - 1):
        crc = zlib.crc32(b"\0" * MIB, crc)
    crc = zlib.crc32(tail, crc)
    size = len(header) + mib * MIB + len(tail)
    gz_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    path = folder / "linkedin-huge.tar.gz"
    path.write_bytes(gz_header + body + struct.pack("<II", crc, size & 0xFFFFFFFF))
    return path


TOPICS = [
    "Shipping small tools that people use beats a grand plan nobody finishes.",
    "Our team moved standups to Thursdays and nobody misses Monday meetings.",
    "I tried sourdough for a month; patience matters more than the recipe.",
    "Three lessons from mentoring juniors: listen first, ask why, write it down.",
]


def linkedin_csv(posts: int = 3) -> bytes:
    rows = [
        f'2025-01-0{i + 1} 10:00:00,https://www.linkedin.com/feed/update/{i},"{TOPICS[i % len(TOPICS)]}",,,PUBLIC\n'
        for i in range(posts)
    ]
    return SHARES_HEADER + "".join(rows).encode()


def truncated_zip(folder: Path) -> Path:
    path = folder / "truncated.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Shares.csv", linkedin_csv(20) * 50)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_tar(folder: Path) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        payload = os.urandom(64 * 1024)  # incompressible, so the cut lands inside the member
        info = tarfile.TarInfo("outbox.json")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    data = buf.getvalue()
    path = folder / "truncated.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_archive(folder: Path) -> Path:
    path = folder / "corrupt.zip"
    path.write_bytes(b"PK\x03\x04" + os.urandom(4096))
    return path


def traversal_zip(folder: Path) -> Path:
    """A valid LinkedIn export whose member names climb out of any extraction folder."""
    path = folder / "traversal.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../../../../tmp/localft-escape/Shares.csv", linkedin_csv())
        zf.writestr("/etc/localft-escape.txt", b"absolute path")
    return path


def links_tar(folder: Path) -> Path:
    """A tar.gz whose Shares.csv is a symlink to a system file, beside a hard link and a device."""
    path = folder / "links.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, target in (
            ("Shares.csv", tarfile.SYMTYPE, "/etc/passwd"),
            ("Profile.csv", tarfile.LNKTYPE, "/etc/shadow"),
            ("posts.csv", tarfile.CHRTYPE, ""),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return path


def deep_json(folder: Path, depth: int = 200_000) -> Path:
    path = folder / "deep.jsonl"
    path.write_text('{"messages": ' + "[" * depth + "]" * depth + "}\n")
    return path


def deep_tweets(folder: Path, depth: int = 200_000) -> Path:
    """An X archive folder whose tweets.js nests arrays deeper than any parser's stack."""
    root = folder / "x-deep"
    (root / "data").mkdir(parents=True)
    (root / "data" / "tweets.js").write_text("window.YTD.tweets.part0 = " + "[" * depth + "]" * depth)
    return root


def big_number_json(folder: Path) -> Path:
    path = folder / "big-number.jsonl"
    path.write_text('{"text": ' + "9" * 50_000 + "}\n")
    return path


def invalid_utf8(folder: Path) -> Path:
    path = folder / "Shares.csv"
    path.write_bytes(SHARES_HEADER + b'2025-01-01,x,"caf\xe9 \xff\xfe broken",,,PUBLIC\n')
    return path


def non_object_jsonl(folder: Path) -> Path:
    path = folder / "rows.jsonl"
    path.write_text('{"text": "a fine first row with enough words"}\n[1, 2, 3]\n"a string"\n')
    return path


def endless_file(folder: Path) -> Path:
    """posts.jsonl that is /dev/zero: no size to check up front, and no end."""
    path = folder / "posts.jsonl"
    path.symlink_to("/dev/zero")
    return path


def chat_rows(folder: Path, name: str, conversations: list[list[str]]) -> Path:
    """Chat JSONL with one row per list of roles, each turn a short distinct sentence."""
    path = folder / name
    with open(path, "w", encoding="utf-8") as f:
        for i, roles in enumerate(conversations):
            messages = [
                {"role": r, "content": f"row {i} turn {j} says something about topic {i * 7 + j}."}
                for j, r in enumerate(roles)
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


OUT_OF_ORDER = [
    ["assistant", "user", "assistant"],
    ["user", "user", "assistant"],
    ["user", "assistant", "assistant"],
    ["user"],
    ["system", "user", "system", "assistant"],
]
IN_ORDER = [["user", "assistant"], ["system", "user", "assistant", "user", "assistant"]]


def roles_out_of_order(folder: Path) -> Path:
    return chat_rows(folder, "out-of-order.jsonl", OUT_OF_ORDER)


def roles_mixed(folder: Path) -> Path:
    """Good rows beside bad ones: the good ones import, the bad ones are counted."""
    return chat_rows(folder, "mixed-roles.jsonl", IN_ORDER * 3 + OUT_OF_ORDER)
