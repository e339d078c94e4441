"""Read an export the same way whether it is a zip, a tar.gz, an extracted folder or one file.

Member names are POSIX paths relative to the export root; text is decoded with BOM and UTF-16 detection.
"""

from __future__ import annotations

import codecs
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from localft.errors import DataError

MAX_MEMBER_BYTES = 512 * 1024 * 1024  # refuse zip bombs rather than fill memory


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
        return self.path.is_file() and self._zip is None and self._tar is None

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
        try:
            if self._zip is not None:
                info = self._zip.getinfo(self._original(name))
                if info.file_size > MAX_MEMBER_BYTES:
                    raise DataError(f"{self.label(name)} is larger than 512 MiB; is this the right file?")
                return self._zip.read(info)
            if self._tar is not None:
                f = self._tar.extractfile(self._original(name))
                if f is None:
                    raise DataError(f"{self.label(name)} cannot be read from the archive")
                return f.read()
            return self._files[name].read_bytes()
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

    def _original(self, name: str) -> str:
        return self._members[name]

    def read_text(self, name: str) -> str:
        return decode_text(self.read_bytes(name), self.label(name))


def shown(value, limit: int = 40) -> str:
    """A value from the user's file, safe inside a one-line message."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
