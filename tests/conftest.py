"""Shared fixtures: an isolated LOCALFT_HOME per test, and cached tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny import build_tiny_model

# The embedded model is materialized once per machine into this cache, not once per test.
SHARED_HOME = Path(os.environ.get("LOCALFT_TEST_CACHE", Path.home() / ".cache" / "localft-tests"))


@pytest.fixture(autouse=True)
def localft_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").mkdir()
    # Share the materialized embedded model across tests through a symlinked models cache.
    shared_models = SHARED_HOME / "cache" / "models"
    if shared_models.is_symlink() and not shared_models.exists():
        shared_models.unlink()  # a cache that pointed somewhere since deleted: start it afresh
    shared_models.mkdir(parents=True, exist_ok=True)
    (home / "cache" / "models").symlink_to(shared_models)
    monkeypatch.setenv("LOCALFT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    return home


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """arch -> folder of a tiny random model; built once per session on demand."""
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, Path] = {}

    def get(arch: str = "llama") -> Path:
        if arch not in built:
            os.environ.setdefault("LOCALFT_HOME", str(SHARED_HOME))
            built[arch] = build_tiny_model(root / arch, arch)
        return built[arch]

    return get
