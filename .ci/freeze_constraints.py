"""Write localft/constraints.txt from the venv the test suite just passed in (`make constraints`).

Every installed distribution except localft is pinned to its version (a local label such as +cpu is
dropped, so the pin also matches the macOS wheel). The pins apply from the tested Python on: an
older Python cannot install several of the tested releases, and a partial set could conflict, so
there pip resolves freely within pyproject.toml's bounds.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from pathlib import Path

from packaging.version import Version

OUT = Path(__file__).resolve().parent.parent / "localft" / "constraints.txt"
SKIP = {"localft", "pip", "setuptools", "wheel"}


def main() -> None:
    tested = f"{sys.version_info.major}.{sys.version_info.minor}"
    pins = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name.lower() in SKIP:
            continue
        version = Version(dist.version).public
        pins[name.lower()] = f'{name}=={version}; python_version >= "{tested}"'
    header = (
        f"# The versions localft's test suite passed with (Python {tested}, {platform.system()} "
        f"{platform.machine()}); written by .ci/freeze_constraints.py.\n"
        "# make and CI install with `pip install -c localft/constraints.txt ...`; `localft doctor` warns\n"
        f"# when an installed version differs. On a Python older than {tested} pip resolves freely.\n"
    )
    OUT.write_text(header + "".join(pins[k] + "\n" for k in sorted(pins)), encoding="utf-8")
    print(f"wrote {len(pins)} pins to {OUT}")


if __name__ == "__main__":
    main()
