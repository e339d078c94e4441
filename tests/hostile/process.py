"""Run `localft` (or any command) as a real process and measure what a user would: exit code,
output, wall time and the process's own peak memory; and run one inside a small file system."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The installed console script, as a user runs it (or the same entry point through this Python).
_SCRIPT = Path(sys.executable).with_name("localft")
LOCALFT = (
    [str(_SCRIPT)]
    if _SCRIPT.is_file()
    else [sys.executable, "-c", "from localft.cli.main import main; main()"]
)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes, the process's own high-water mark (ru_maxrss)
    timed_out: bool

    def describe(self) -> str:
        return (
            f"exit {self.code} in {self.seconds:.1f}s, peak {self.peak_rss >> 20} MiB"
            f"{' (killed: time limit)' if self.timed_out else ''}\nstdout: {self.stdout[-800:]}\n"
            f"stderr: {self.stderr[-1500:]}"
        )


# A small first process starts the command and reports its exit code and rusage. Measured directly,
# a child of the test process would carry the test process's own peak: Linux keeps the memory
# high-water mark of the address space a child is forked from across exec.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_measured(
    argv: list[str], *, env: dict | None = None, timeout: float = 60, stdin: str = "", cwd: Path | None = None
) -> Outcome:
    """Run `argv`, killing it (and its group) past `timeout`, with its exit code, output, time and
    its own peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {name: Path(tmp) / name for name in ("in", "out", "err", "usage")}
        files["in"].write_text(stdin)
        start = time.monotonic()
        with open(files["in"], "rb") as inp, open(files["out"], "wb") as out, open(files["err"], "wb") as err:
            launcher = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(files["usage"]), *argv], stdin=inp, stdout=out,
                stderr=err, env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            )  # fmt: skip
            try:
                launcher.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
                timed_out = True
        seconds = time.monotonic() - start
        code, peak = files["usage"].read_text().split() if files["usage"].is_file() else (-9, 0)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return Outcome(
            int(code),
            files["out"].read_text(errors="replace"),
            files["err"].read_text(errors="replace"),
            seconds,
            int(peak) * scale,
            timed_out,
        )


def small_fs_available() -> bool:
    """Whether this machine lets an unprivileged process mount a tmpfs in its own namespaces
    (`unshare -rm`): Linux with user namespaces, which most CI runners and laptops have."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || exit 3"],
        capture_output=True,
    )
    return probe.returncode == 0


def in_small_fs(
    mount_point: Path,
    size_mib: float,
    argv: list[str],
    *,
    read_only: bool = False,
    before: str = "",
    after: str = "",
) -> list[str]:
    """`argv`, run with a fresh tmpfs of `size_mib` MiB (or a read-only one) mounted at
    `mount_point`: a real small disk, visible to that process only. `before` and `after` are shell
    commands run around it while the disk is mounted (to put files there, to list what is left);
    the exit code is the command's."""
    options = f"size={int(size_mib * 1024)}k" + (",ro" if read_only else "")
    script = f'mount -t tmpfs -o {options} tmpfs "$0" || exit 99\n{before}\n"$@"\nrc=$?\n{after}\nexit $rc'
    return ["unshare", "-rm", "sh", "-c", script, str(mount_point), *argv]
