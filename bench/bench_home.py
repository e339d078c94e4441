"""A temporary LOCALFT_HOME for a benchmark, so its runs and files never show in the user's run
list. Prepared models (the embedded one) are reused from the user's cache, read only, through a
symlink, as the test suite does. Call it before anything reads LOCALFT_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def use_temporary_home(workdir: Path) -> Path:
    """Point LOCALFT_HOME at workdir/home (created), sharing the user's prepared models; returns it."""
    from localft.paths import localft_home

    user_models = localft_home() / "cache" / "models"
    home = Path(workdir) / "home"
    (home / "cache").mkdir(parents=True, exist_ok=True)
    if user_models.is_dir() and not (home / "cache" / "models").exists():
        (home / "cache" / "models").symlink_to(user_models, target_is_directory=True)
    os.environ["LOCALFT_HOME"] = str(home)
    return home
