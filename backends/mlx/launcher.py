"""An MLX run's processes through mlx.launch (ring over TCP, JACCL where the hosts file says so).
`python -m localft.backends.mlx.launcher ARGS` runs mlx.launch and gives it the exit status it
lacks (it exits 0 when a rank dies), with a report of the failed ranks. No mlx import."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from localft.errors import BackendUnavailable, RunError

from .hosts import read_hosts

FIRST_PORT = 32323  # mlx.launch's default; rank r's ring listens on FIRST_PORT + r
NODE_EXIT = re.compile(
    rb"Node with rank (\d+) exited with code (-?\d+)"
)  # mlx.launch's report of a rank's end


def launcher_path() -> str:
    """mlx.launch, installed beside this interpreter by the mlx package."""
    script = Path(sys.executable).parent / ("mlx.launch.exe" if os.name == "nt" else "mlx.launch")
    if not script.is_file():
        raise BackendUnavailable(f"mlx.launch is not beside {sys.executable}; pip install 'localft[mlx]'")
    return str(script)


def free_ports(count: int, start: int = FIRST_PORT, tries: int = 200) -> int:
    """The first port from `start` up where `count` consecutive ports are free here (two runs, or
    two test sessions, must not meet on mlx.launch's default ports)."""
    for base in range(start, start + tries * count, count):
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RunError(f"no {count} free TCP ports from {start} up for MLX's ring backend; end other runs")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def launch_command(worker: list[str], world_size: int, hosts: Path | None) -> list[str]:
    """The command that starts `worker` (python's arguments) once per rank: `world_size` processes
    on this machine over 127.0.0.1, or one per host of a hosts file, each with the same interpreter
    path and the same LOCALFT_HOME (the run folder must be at the same path on every host)."""
    launch = [sys.executable, "-m", __name__, "--python", sys.executable]
    if hosts is None:
        launch += ["--backend", "ring", "-n", str(world_size), "--starting-port", str(free_ports(world_size))]
    else:
        from localft.paths import localft_home

        hostfile = read_hosts(hosts, world_size)
        launch += ["--backend", hostfile.backend, "--hostfile", str(Path(hosts).resolve())]
        launch += ["--env", f"LOCALFT_HOME={localft_home().resolve()}"]  # ssh passes no environment
    return [*launch, "--", *worker]


def failure_report(ends: list[tuple[int, int]]) -> str | None:
    """The ranks that failed, as torch.distributed.run reports them (the first observed last), for
    localft.run.rank_group to name the rank to blame; None when every rank ended well."""
    from localft.run.rank_group import REPORT

    failed = [(rank, code) for rank, code in reversed(ends) if code != 0]
    if not failed:
        return None
    return "\n".join([f"{REPORT} (mlx.launch)", *(f"  rank: {r}\n  exitcode: {c}" for r, c in failed)])


def poke(stdin_write: int, every: float = 2.0) -> None:
    """A newline into mlx.launch's stdin now and then (every 2 s, slowing to once a minute): it
    forwards it to each rank, and a rank that let go of its stdin (localft.backends.mlx.distributed)
    makes it stop polling that rank's pipe."""
    while True:
        time.sleep(every)
        every = min(every * 1.5, 60.0)
        try:
            os.write(stdin_write, b"\n")
        except OSError:
            return


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # A pipe of our own as stdin (never at end of file: mlx.launch would spin on it).
    stdin_read, stdin_write = os.pipe()
    child = subprocess.Popen(
        [launcher_path(), *args], stdin=stdin_read, stderr=subprocess.PIPE, start_new_session=True
    )
    os.close(stdin_read)
    threading.Thread(target=poke, args=(stdin_write,), daemon=True).start()

    def end_group(signum, frame) -> None:  # the run's worker ends: the launcher and its ranks end too
        os.killpg(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, end_group)
    signal.signal(signal.SIGINT, end_group)
    ends = []
    for line in child.stderr:
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
        ends += [(int(r), int(c)) for r, c in NODE_EXIT.findall(line)]
    code = child.wait()
    report = failure_report(ends)
    if report is None:
        return code
    print(report, file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
