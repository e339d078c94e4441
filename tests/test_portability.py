"""Windows readiness, tested on Linux: no localft module needs a POSIX-only module to load, and the
model-preparation lock works across processes through filelock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Blocks `fcntl` as on Windows (an import of it raises ImportError), then imports every module of
# localft (backends, dashboard and recipes included) and prints the ones that failed.
IMPORT_ALL = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    sys.modules["fcntl"] = None
    import localft
    names = sorted(m.name for m in pkgutil.walk_packages(localft.__path__, "localft."))
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            failed.append(f"{name}: {exc}")
    print(len(names))
    print("\\n".join(failed))
    """
)


def test_every_module_imports_without_fcntl():
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    count, *failed = out.stdout.strip().split("\n")
    assert int(count) > 60  # backends, tui and recipes were found too
    assert [line for line in failed if line] == []


def test_the_model_lock_excludes_a_second_process(tmp_path):
    from localft.paths import file_lock

    lock = tmp_path / "cache" / "model.lock"
    probe = f"from filelock import FileLock; FileLock({str(lock)!r}).acquire(timeout=0.5)"
    with file_lock(lock):
        held = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert held.returncode != 0 and "Timeout" in held.stderr
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert free.returncode == 0, free.stderr
