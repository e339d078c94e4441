"""Read an export the same way whether it is a zip, a tar.gz, an extracted folder or one file.

Member names are POSIX paths relative to the export root; text is decoded with BOM and UTF-16 detection.
Every read is bounded by the bytes actually inflated, while streaming, so a bomb stops at the limit.
"""

from __future__ import annotations

import codecs
import io
import json
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from localft.errors import DataError

# Only text files are read (posts, CSV, JSON), never media: a person's writing is far below these.
MAX_FILE_MIB = 256  # one file, e.g. X's tweets.js of ~100k tweets is about 200 MiB
MAX_TOTAL_MIB = 512  # all files read from one export
_CHUNK = 1 << 20


class ExportSource:
    """One export: `names()` lists its files, `read_bytes(name)` reads one, `label(name)` names it in errors."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path} does not exist; pass the export archive, folder or file")
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        self._files: dict[str, Path] = {}  # POSIX name -> file on disk (folder) or archive member
        self._members: dict[str, str] = {}  # POSIX name -> the member name exactly as the archive has it
        self._read_sizes: dict[str, int] = {}  # bytes of each file read so far, for the total limit
        if self.path.is_dir():
            for p in sorted(self.path.rglob("*")):
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts):
                    self._files[p.relative_to(self.path).as_posix()] = p
        elif is_archive_name(self.path.name) or _looks_like_archive(self.path):
            self._open_archive()
        else:
            self._files[self.path.name] = self.path

    @property
    def is_single_file(self) -> bool:
        return not self.path.is_dir() and self._zip is None and self._tar is None

    def _open_archive(self) -> None:
        name = self.path.name.lower()
        try:
            if name.endswith(".zip") or zipfile.is_zipfile(self.path):
                self._zip = zipfile.ZipFile(self.path)
                members = [i.filename for i in self._zip.infolist() if not i.is_dir()]
            else:
                self._tar = tarfile.open(self.path)  # noqa: SIM115 - closed in close()
                members = [m.name for m in self._tar.getmembers() if m.isfile()]
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
            kind = "zip" if name.endswith(".zip") else "tar"
            raise DataError(
                f"{self.path} is not a readable {kind} archive ({_reason(exc)}); "
                "download the export again, or unpack it and pass the folder"
            ) from None
        for m in members:
            if "__MACOSX" in m or PurePosixPath(m).name.startswith("."):
                continue
            self._files[m.lstrip("/")] = Path(m)
            self._members[m.lstrip("/")] = m

    def close(self) -> None:
        for archive in (self._zip, self._tar):
            if archive is not None:
                archive.close()

    def __enter__(self) -> ExportSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def names(self) -> list[str]:
        return list(self._files)

    def find(self, *suffixes: str) -> list[str]:
        """Members whose path ends with one of `suffixes` (case-insensitive, at a folder boundary)."""
        found = []
        for name in self._files:
            low = "/" + name.lower()
            if any(low.endswith("/" + s.lower()) for s in suffixes):
                found.append(name)
        return sorted(found)

    def label(self, name: str) -> str:
        if self.is_single_file:
            return str(self.path)
        if self.path.is_dir():
            return str(self.path / name)
        return f"{self.path}:{name}"

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes, refused with a DataError once more than the limits are inflated."""
        try:
            if self._zip is not None:
                info = self._zip.getinfo(self._original(name))
                self._check_declared(name, info.file_size)
                with self._zip.open(info) as f:
                    data = self._read_bounded(f, name)
            elif self._tar is not None:
                member = self._tar.getmember(self._original(name))
                self._check_declared(name, member.size)
                f = self._tar.extractfile(member)
                if f is None:
                    raise DataError(f"{self.label(name)} cannot be read from the archive")
                data = self._read_bounded(f, name)
            else:
                path = self._files[name]
                self._check_declared(name, path.stat().st_size)
                with open(path, "rb") as f:  # bounded too: /dev/zero has no size to check up front
                    data = self._read_bounded(f, name)
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            zlib.error,
            EOFError,
            OSError,
            RuntimeError,  # an encrypted member
            NotImplementedError,  # a compression method zipfile lacks
            ValueError,
            KeyError,
        ) as exc:
            raise DataError(
                f"{self.label(name)} cannot be read ({_reason(exc)}); download the export again"
            ) from None
        self._read_sizes[name] = len(data)
        return data

    def _limit(self, name: str) -> int:
        """Bytes `name` may still inflate: the per-file limit, or what is left of the total."""
        spent = sum(size for other, size in self._read_sizes.items() if other != name)
        return min(MAX_FILE_MIB << 20, (MAX_TOTAL_MIB << 20) - spent)

    def _too_large(self, name: str) -> DataError:
        return DataError(
            f"{self.label(name)} is larger than localft reads from an export ({MAX_FILE_MIB} MiB a file, "
            f"{MAX_TOTAL_MIB} MiB in all); is this the right file? Pass the export's text files alone"
        )

    def _check_declared(self, name: str, size: int) -> None:
        if size > self._limit(name):  # a size the archive states: refuse before inflating anything
            raise self._too_large(name)

    def _read_bounded(self, stream: BinaryIO, name: str) -> bytes:
        """Read in chunks, counting what is actually inflated: a header that lies about the size
        (a zip bomb) or a file with no size (/dev/zero) stops at the limit, memory stays bounded."""
        limit, buf = self._limit(name), io.BytesIO()
        while chunk := stream.read(_CHUNK):
            if buf.tell() + len(chunk) > limit:
                raise self._too_large(name)
            buf.write(chunk)
        return buf.getvalue()

    def _original(self, name: str) -> str:
        return self._members[name]

    def read_text(self, name: str) -> str:
        return decode_text(self.read_bytes(name), self.label(name))


def shown(value, limit: int = 40) -> str:
    """A value from the user's file, safe inside a one-line message."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_json(text: str, label: str):
    """json.loads, with input Python refuses to parse as a DataError (see json_limit_error); a
    JSONDecodeError is left to the caller, which knows how to name the line."""
    try:
        return json.loads(text)
    except (RecursionError, ValueError) as exc:
        if isinstance(exc, json.JSONDecodeError) or (error := json_limit_error(exc, label)) is None:
            raise
        raise error from None


def json_limit_error(exc: BaseException, label: str) -> DataError | None:
    """The DataError for JSON beyond Python's limits (nesting deeper than its recursion limit, an
    integer of thousands of digits), or None for any other error."""
    if isinstance(exc, RecursionError):
        return DataError(f"{label} holds JSON nested too deeply to read; is this the export file?")
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return DataError(f"{label} holds a number with thousands of digits; is this the export file?")
    return None


def is_archive_name(name: str) -> bool:
    low = name.lower()
    return low.endswith((".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz"))


def _looks_like_archive(path: Path) -> bool:
    if path.suffix.lower() in (".csv", ".json", ".jsonl", ".js", ".txt", ".md", ".html"):
        return False
    with path.open("rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x1f\x8b")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes, label: str) -> str:
    """Text from bytes: UTF-8 (BOM or not), UTF-16/32 by BOM or by the zero-byte pattern of UTF-16."""
    if not data:
        raise DataError(f"{label} is empty (0 bytes); export your data again or pass another file")
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, data = name, data[len(bom) :]
            break
    else:
        sample = data[:400]
        zeros_odd, zeros_even = sample[1::2].count(0), sample[0::2].count(0)
        if len(sample) >= 4 and zeros_odd > len(sample) // 4 and zeros_even == 0:
            encoding = "utf-16-le"
        elif len(sample) >= 4 and zeros_even > len(sample) // 4 and zeros_odd == 0:
            encoding = "utf-16-be"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{label} line {line}: not {encoding.upper()} text (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8 and try again"
        ) from None
    if "\x00" in text:
        raise DataError(f"{label} is binary, not text; pass the export file itself")
    return text.replace("\r\n", "\n").replace("\r", "\n")
