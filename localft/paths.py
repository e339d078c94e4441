"""Where localft keeps runs and caches: $LOCALFT_HOME, else the XDG data dir."""

from __future__ import annotations

import os
from pathlib import Path

from localft.errors import ConfigError


def localft_home() -> Path:
    env = os.environ.get("LOCALFT_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("localft", appauthor=False))


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) or raise a one-line error that says how to fix it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {path} ({exc.strerror or exc}); set LOCALFT_HOME to a writable folder"
        ) from None
    return path


def runs_dir() -> Path:
    return ensure_dir(localft_home() / "runs")


def cache_dir() -> Path:
    return ensure_dir(localft_home() / "cache")
