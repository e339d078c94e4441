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
    [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-c", "from localft.cli import main; main()"]
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


def run_measured(
    argv: list[str], *, env: dict | None = None, timeout: float = 60, stdin: str = "", cwd: Path | None = None
) -> Outcome:
    """Run `argv`, killing it (and its group) past `timeout`; its rusage comes from wait4, so the
    peak memory is this process's own, not the highest of every child the tests ran."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        inp.write(stdin.encode())
        inp.seek(0)
        start = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=inp, stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return Outcome(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            usage.ru_maxrss * scale,
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
