"""Read safetensors weights one tensor at a time, without torch.

Only the header is parsed up front; each tensor is read when asked, so converting a model
holds about one tensor in memory, not the whole model.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localft.errors import ExportError

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


@dataclass(frozen=True)
class TensorEntry:
    name: str
    file: Path
    dtype: str  # safetensors dtype name
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


def _read_header(path: Path) -> list[TensorEntry]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ExportError(f"{path} is not a safetensors file (too short); re-save the model")
        (n,) = struct.unpack("<Q", raw)
        if n <= 0 or n + 8 > size:
            raise ExportError(f"{path} is corrupted (bad header length); re-save or re-download the model")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise ExportError(
                f"{path} is corrupted (unreadable header); re-save or re-download the model"
            ) from None
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        entry = TensorEntry(name, path, info["dtype"], tuple(info["shape"]), 8 + n + start, 8 + n + end)
        if entry.end > size:
            raise ExportError(
                f"{path} is truncated ({name} runs past the end); re-save or re-download the model"
            )
        if entry.dtype not in _DTYPES:
            raise ExportError(
                f"{path}: tensor {name} has dtype {entry.dtype}, which the converter does not read"
            )
        entries.append(entry)
    return entries


class SafetensorsFolder:
    """All tensors of an HF model folder (single file or sharded), by name."""

    def __init__(self, folder: Path):
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise ExportError(
                f"{folder} has no .safetensors weights; save the model with safe_serialization=True"
            )
        self.entries: dict[str, TensorEntry] = {}
        for f in files:
            for e in _read_header(f):
                self.entries[e.name] = e

    def names(self) -> list[str]:
        return list(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def read(self, name: str) -> np.ndarray:
        """The tensor as float32 (bf16 widened exactly, f16 exactly)."""
        e = self.entries[name]
        # A plain read, not a memory map: mapped pages would count against the process until exit.
        dtype = np.dtype(_DTYPES[e.dtype])
        arr = np.fromfile(e.file, dtype=dtype, count=(e.end - e.start) // dtype.itemsize, offset=e.start)
        arr = arr.reshape(e.shape)
        if e.dtype == "BF16":
            # bf16 is the top half of an f32: shift the bits up.
            return (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.astype(np.float32, copy=False)  # f32 stored: no second copy

    def read_raw(self, name: str) -> bytes:
        """The tensor's stored bytes, unchanged (for copying it to another file)."""
        e = self.entries[name]
        with open(e.file, "rb") as f:
            f.seek(e.start)
            return f.read(e.end - e.start)


def copy_tensors(source: SafetensorsFolder, renames: dict[str, str], out: Path) -> None:
    """Write the tensors named in `renames` (old name -> new name) to one safetensors file,
    byte for byte and one at a time, so the copy never holds more than one tensor in memory."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for old, new in renames.items():
        e = source.entries[old]
        header[new] = {
            "dtype": e.dtype,
            "shape": list(e.shape),
            "data_offsets": [offset, offset + e.end - e.start],
        }
        offset += e.end - e.start
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for old in renames:
            f.write(source.read_raw(old))
