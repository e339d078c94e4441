"""Disk space and file-system errors as user errors: refuse a write that cannot fit, with the
numbers, and turn an OS error about space or permissions into a one-line message."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from localft.errors import ConfigError, DoesNotFit, LocalftError
from localft.hardware import fmt_bytes

# Slack on top of a known size: file-system metadata, the temporary copy beside the target.
HEADROOM_BYTES = 64 * 1024**2


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
            f"but {folder} has {fmt_bytes(free)} free; free some space or set LOCALFT_HOME to a larger disk"
        )


def user_os_error(exc: BaseException, path: Path | str | None = None) -> LocalftError | None:
    """The user error an OSError stands for (no space, no permission, a file where a folder should
    be), or None for any other error. Written once, used by the CLI and every writer."""
    if not isinstance(exc, OSError):
        return None
    where = path or exc.filename or "the target folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DoesNotFit(
            f"the disk is full while writing {where}; free some space and run the command again"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(f"cannot write to {where} ({exc.strerror}); choose a writable location")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return ConfigError(f"cannot write to {where} ({exc.strerror}); a file is in the way of a folder")
    return None
