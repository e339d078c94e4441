"""A normal (non-editable) install puts backends/, tui/ and recipes/ inside the localft namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_namespaced_packages_and_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("localft-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"localft/backends/__init__.py", "localft/tui/__init__.py", "localft/recipes/__init__.py"} <= names
    assert "localft/presets/cpu-small.toml" in names
    assert "localft/constraints.txt" in names  # `localft doctor` compares installed versions with it
    assert not any(n.startswith(("backends/", "tui/", "recipes/")) for n in names)

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "import localft, localft.backends, localft.recipes, localft.config as c; "
        "print(localft.__file__); print(localft.backends.__file__); print(len(c.preset_names()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    lines = out.stdout.split()
    assert all(line.startswith(str(site)) for line in lines[:2]), out.stdout
    assert int(lines[2]) >= 3
