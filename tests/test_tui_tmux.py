"""End to end in a real terminal: the `localft` binary in tmux starts the embedded demo, shows it
training, and re-attaches to it after being closed and reopened; `kill -USR1` dumps its threads'
stacks into dashboard.log."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localft.run.folder import list_runs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

LOCALFT = Path(sys.executable).parent / "localft"


class Terminal:
    """One tmux session on a private server, 100x30, running a command."""

    def __init__(self, name: str, home: Path) -> None:
        self.socket = f"localft-test-{os.getpid()}-{name}"
        self.logs = home / "logs"  # shown when a wait fails: the dashboard's and the recipe's logs

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        return out.stdout

    def open(self, command: str) -> None:
        self.tmux("new-session", "-d", "-x", "100", "-y", "30", command)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", key)
            time.sleep(0.3)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m := re.search(pattern, self.screen()):
                return m
            time.sleep(0.5)
        logs = "".join(
            f"\n--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs.glob("*.log")
        )
        raise AssertionError(f"{pattern!r} not on screen after {timeout} s:\n{self.screen()}{logs}")

    def close(self) -> None:
        self.tmux("kill-server")


def processes_with_home(home: Path) -> list[int]:
    """Processes this test started through the binary: their environment names our LOCALFT_HOME."""
    mark = f"LOCALFT_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_demo_from_the_dashboard_and_reattach(localft_home):
    # COLUMNS/LINES inherited from pytest would override the terminal's real size.
    env = f"env -u COLUMNS -u LINES LOCALFT_HOME={localft_home} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false"
    command = f"cd {Path(__file__).parent.parent} && {env} {LOCALFT}"
    term = Terminal("first", localft_home)
    again = Terminal("again", localft_home)
    try:
        term.open(command)
        term.wait_for("No runs yet", 30)
        term.keys("n")
        term.wait_for("Data report", 15)
        term.keys("C-o")  # the demo: style-clone on the sample export with the embedded model
        term.wait_for("Maya Lindqvist", 30)  # the sample export's data report
        term.wait_for(r"\n\s*epochs\s.*\n\s*2\s", 30)  # the recipe's CPU settings filled the form
        term.wait_for(r"116 steps", 60)  # ... and the plan, sized to the sample's 120 posts
        term.keys("C-s")
        term.wait_for(r"(preparing|running)[\s\S]*step 0/", 60)  # the Training screen, before step 1
        term.wait_for(r"running[\s\S]*step [1-9]\d*/116", 240)  # ... and as training advances
        term.keys("C-q")
        time.sleep(1)
        runs = list_runs()
        assert [r.status for r in runs] == ["running"]  # closing the dashboard did not stop it

        again.open(command)  # reopened: the running job is shown again without a key press
        again.wait_for(runs[0].id, 30)
        again.wait_for(r"step \d+/116", 30)
        assert "running" in again.screen()
        again.keys("C-q")
    finally:
        term.close()
        again.close()
        for pid in processes_with_home(localft_home):  # the recipe and its worker: no need to be gentle
            with contextlib.suppress(ProcessLookupError):  # it may have exited since it was listed
                os.kill(pid, signal.SIGKILL)


def is_localft(pid: int) -> bool:
    """The `localft` binary itself (not the tmux server, which shares the test's environment)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [bytes(LOCALFT)]
    except OSError:
        return False


def test_kill_usr1_writes_every_threads_stack_to_the_dashboard_log(localft_home):
    env = f"env -u COLUMNS -u LINES LOCALFT_HOME={localft_home} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false"
    term = Terminal("usr1", localft_home)
    log = localft_home / "logs" / "dashboard.log"
    try:
        term.open(f"cd {Path(__file__).parent.parent} && {env} {LOCALFT}")
        term.wait_for("No runs yet", 30)
        (dashboard,) = [p for p in processes_with_home(localft_home) if is_localft(p)]
        os.kill(dashboard, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        current = re.compile(r"Current thread 0x[0-9a-f]+ \(most recent call first\)")
        # The log is read while faulthandler writes it: wait for the current (main) thread's part
        # and then for the file to stop growing (its frames come after its header; CI read between).
        dump, previous = "", None
        while not current.search(dump) or dump != previous:
            assert time.monotonic() < deadline, "no stack dump of the current thread in dashboard.log"
            time.sleep(0.3)
            previous, dump = dump, log.read_text(errors="replace") if log.is_file() else ""
        assert "in run_dashboard" in dump and "textual" in dump  # the main thread, inside the app
        assert "most recent call first" not in term.screen()  # in the log, never on the screen
        term.keys("C-q")  # the dashboard is still up and quits normally
        deadline = time.monotonic() + 15
        while dashboard in processes_with_home(localft_home):
            assert time.monotonic() < deadline, "the dashboard did not quit after the dump"
            time.sleep(0.2)
    finally:
        term.close()
        for pid in processes_with_home(localft_home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_training_and_export_draw_bars_with_eta_in_a_terminal(localft_home, tiny_models):
    """`localft train` then `localft export` in a real terminal: the bars are redrawn in place with
    step, loss, tokens/s, elapsed and remaining time, and no library warning reaches the screen."""
    export = Path(__file__).parent.parent / "examples" / "linkedin-export.zip"
    env = f"env -u COLUMNS -u LINES LOCALFT_HOME={localft_home} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false"
    train = (f"{LOCALFT} train {export} --model {tiny_models('llama')} --steps 60 --name bars "
             "--set max_seq_len=128 --set eval_every=60")  # fmt: skip
    term = Terminal("bars", localft_home)
    try:
        term.tmux("new-session", "-d", "-x", "160", "-y", "40",
                  f"cd {Path(__file__).parent.parent} && {env} sh -c '{train} && {LOCALFT} export bars --quant Q8_0; sleep 600'")  # fmt: skip
        bar = r"train\s+\S*━\S*\s+(\d+)/60\s+loss \d+\.\d+\s+[\d,.]+ tok/s\s+peak [\d.]+ \w+\s+(\d:\d\d:\d\d)\s+eta (\d:\d\d:\d\d)"
        first = term.wait_for(bar, 240)
        later = term.wait_for(rf"train\s+\S+\s+(?!{first.group(1)}/)(\d+)/60", 120)  # redrawn: a later step
        assert int(later.group(1)) > int(first.group(1))
        assert len(re.findall(r"^train\s", term.screen(), re.M)) == 1  # one bar, drawn in place
        term.wait_for(r"convert\s+\S+\s+\d+/\d+.*eta", 240)  # the export's stages have bars too
        term.wait_for(r"verify: done", 300)  # the export's end: the bars stay, no noise between them
        screen = term.screen()
        for noise in ("kernels-community", "Loading weights", "FutureWarning", "it/s]"):
            assert noise not in screen, screen
    finally:
        term.close()
        for pid in processes_with_home(localft_home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
