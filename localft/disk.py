"""Disk space and file-system errors as user errors: refuse a write that cannot fit, with the
numbers, and turn an OS error about space or permissions into a one-line message."""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from localft.errors import ConfigError, DoesNotFit, LocalftError

# Slack on top of a known size: file-system metadata, the temporary copy beside the target.
HEADROOM_BYTES = 64 * 1024**2
# How writers that are not Python's own word a full disk: safetensors ("No space left on device
# (os error 28)"), numpy's short write ("3145728 requested and 1211904 written"), quota errors.
_FULL_DISK_WORDS = re.compile(
    r"no space left on device|os error 28\b|disk quota exceeded|\d+ requested and \d+ written", re.IGNORECASE
)


def fmt_bytes(n: int | float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def free_bytes(folder: Path) -> int:
    """Free space for the nearest existing folder at or above `folder`."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise DoesNotFit before writing `what` (about `needed` bytes) into `folder` if it cannot fit."""
    free = free_bytes(folder)
    if needed + HEADROOM_BYTES > free:
        raise DoesNotFit(
            f"not enough disk space for {what}: it needs about {fmt_bytes(needed + HEADROOM_BYTES)} "
            f"but {folder} has {fmt_bytes(free)} free; free some space or write to a larger disk "
            "(LOCALFT_HOME for runs, -o for exports)"
        )


def nearly_full(folder: Path) -> bool:
    """Less free space than the headroom: why a writer that fails without saying why most likely failed."""
    return free_bytes(folder) < HEADROOM_BYTES


def disk_full_error(where: Path | str) -> DoesNotFit:
    return DoesNotFit(f"the disk is full while writing {where}; free some space and run the command again")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def user_os_error(exc: BaseException, path: Path | str | None = None) -> LocalftError | None:
    """The user error an exception stands for (no space, no permission, a file where a folder should
    be), or None for any other error. Written once, used by the CLI and every writer."""
    for cause in _chain(exc):
        if (
            isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
        ) or _FULL_DISK_WORDS.search(str(cause)):
            return disk_full_error(path or getattr(cause, "filename", None) or "the target folder")
    if not isinstance(exc, OSError):
        return None
    where = path or exc.filename or "the target folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(f"cannot write to {where} ({exc.strerror}); choose a writable location")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return ConfigError(f"cannot write to {where} ({exc.strerror}); a file is in the way of a folder")
    return None


@contextlib.contextmanager
def space_errors(where: Path | str) -> Iterator[None]:
    """Around a write into `where`: an error that is a full disk or a permission problem becomes
    the user error it stands for, in every face (CLI, dashboard, recipes), not only the CLI."""
    try:
        yield
    except LocalftError:
        raise
    except Exception as exc:
        if (user_error := user_os_error(exc, where)) is None:
            raise
        raise user_error from exc
