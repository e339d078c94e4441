"""Processes on every OS (Linux, macOS, Windows): whether a pid is still the program we started,
how to start one that outlives the terminal, and the POSIX signal that also asks it to stop."""

from __future__ import annotations

import os
import signal
import subprocess


def process_alive(pid: int | None, *markers: str) -> bool:
    """True when `pid` runs, is not a zombie, and its command line contains every marker: a pid
    the OS reused for another program does not count."""
    import psutil

    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = "\0".join(proc.cmdline()) if markers else ""
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return False
    except psutil.AccessDenied:
        return True  # another user's (or a protected) process: nothing to check, trust the pid
    return all(marker in cmdline for marker in markers)


def process_started(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch, as the OS reports it), or None if it is gone:
    a pid together with its start time names one process, even after the OS reuses the pid."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def detached() -> dict:
    """Popen arguments that keep a child running when the terminal that started it closes (or
    gets Ctrl-C): its own session on POSIX, its own process group and hidden console on Windows."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def interrupt(pid: int) -> None:
    """SIGINT on POSIX, beside the stop file: it also reaches a worker that an older localft
    started, which does not poll the file. Windows has no such signal for a detached process."""
    if os.name == "nt":
        return
    try:
        os.kill(pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        pass
