"""A GGUF file's header read without its arrays: the scalar and string metadata and each tensor's
type and size. gguf-py's reader builds an object per element of every array (a vocabulary of 150k
tokens and as many merges); listing models needs none of them, so arrays are stepped over."""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"GGUF"
# GGUF value types (gguf-py's GGUFValueType) -> struct format of one value.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GgufHeaderError(ValueError):
    """The file is no GGUF, or its header is cut short or inconsistent."""


@dataclass(frozen=True)
class GgufTensor:
    name: str
    type_id: int  # gguf-py's GGMLQuantizationType value
    n_elements: int


@dataclass(frozen=True)
class GgufHeader:
    metadata: dict  # key -> int, float, bool or str; an array key -> its length (the elements are not read)
    tensors: list[GgufTensor]


class _Cursor:
    def __init__(self, data, endian: str) -> None:
        self.data, self.pos, self.endian = data, 0, endian

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise GgufHeaderError("the header ends early (a truncated file)")
        (value,) = struct.unpack_from(self.endian + fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("Q")
        if self.pos + n > len(self.data):
            raise GgufHeaderError("a string runs past the end of the file")
        value = bytes(self.data[self.pos : self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return value

    def skip_array(self) -> int:
        """Step over an array (strings one length at a time, fixed-size values at once): its length."""
        kind, count = self.take("I"), self.take("Q")
        if kind == _STRING:
            for _ in range(count):
                self.pos += 8 + struct.unpack_from(self.endian + "Q", self.data, self.pos)[0]
        elif kind == _ARRAY:
            for _ in range(count):
                self.skip_array()
        elif kind in _SCALARS:
            self.pos += count * struct.calcsize(_SCALARS[kind])
        else:
            raise GgufHeaderError(f"unknown array element type {kind}")
        if self.pos > len(self.data):
            raise GgufHeaderError("an array runs past the end of the file")
        return count

    def value(self, kind: int):
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            return self.skip_array()
        if kind not in _SCALARS:
            raise GgufHeaderError(f"unknown metadata value type {kind}")
        return self.take(_SCALARS[kind])


def read_gguf_header(path: Path) -> GgufHeader:
    """The metadata (arrays by length only) and tensor list of a GGUF file, memory-mapped: only the
    header's pages are read, whatever the file's size."""
    with open(path, "rb") as f:
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise GgufHeaderError("the file is empty") from None
    with data:
        try:
            return _parse(data)
        except struct.error:
            raise GgufHeaderError("the header ends early (a truncated file)") from None


def _parse(data) -> GgufHeader:
    if data[:4] != MAGIC:
        raise GgufHeaderError("no GGUF magic at the start of the file")
    # A version whose low half is zero was written in the other byte order (gguf-py's test).
    endian = ">" if struct.unpack_from("<I", data, 4)[0] & 0xFFFF == 0 else "<"
    cursor = _Cursor(data, endian)
    cursor.pos = 4
    if cursor.take("I") < 2:
        raise GgufHeaderError("GGUF version 1 files are not supported")
    n_tensors, n_kv = cursor.take("Q"), cursor.take("Q")
    metadata = {}
    for _ in range(n_kv):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.take("I"))
    tensors, data_end = [], 0
    for _ in range(n_tensors):
        name = cursor.string()
        dims = [cursor.take("Q") for _ in range(cursor.take("I"))]
        type_id, offset = cursor.take("I"), cursor.take("Q")
        n = math.prod(dims)
        tensors.append(GgufTensor(name, type_id, n))
        data_end = max(data_end, offset + _tensor_bytes(type_id, n))
    # A file cut short (a download still running) is refused as gguf-py's reader refuses it.
    alignment = metadata.get("general.alignment", 32)
    data_start = (
        -(-cursor.pos // alignment) * alignment if isinstance(alignment, int) and alignment else cursor.pos
    )
    if data_start + data_end > len(data):
        raise GgufHeaderError(f"the tensor data ends early ({len(data)} of {data_start + data_end} bytes)")
    return GgufHeader(metadata, tensors)


def _tensor_bytes(type_id: int, n_elements: int) -> int:
    import gguf

    try:
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)]
    except (ValueError, KeyError):  # a type this gguf-py does not know: its size is not checked
        return 0
    return n_elements // block * type_size
