"""Where localft keeps runs and caches: $LOCALFT_HOME, else the XDG data dir."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from localft.errors import ConfigError


def localft_home() -> Path:
    env = os.environ.get("LOCALFT_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("localft", appauthor=False))


_WRITABLE: set[Path] = set()  # folders already proven writable in this process


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) or raise a one-line error that says how to fix it.

    The write probe has a unique name: the dashboard calls this from several threads at once, and
    a shared probe name let one thread delete the other's probe mid-check."""
    import tempfile

    if path in _WRITABLE and path.is_dir():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {path} ({exc.strerror or exc}); set LOCALFT_HOME to a writable folder"
        ) from None
    _WRITABLE.add(path)
    return path


def runs_dir() -> Path:
    return ensure_dir(localft_home() / "runs")


def cache_dir() -> Path:
    return ensure_dir(localft_home() / "cache")


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock so two processes never write the same cache entry (filelock: every OS)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield
