"""What the terminal shows during long work, without a terminal: plain lines with elapsed time and
ETA folded from the events (the bars themselves are read in tmux: tests/test_tui_tmux.py); and
libraries' warnings in LOCALFT_HOME/logs/libraries.log, never on the screen of a real command."""

from __future__ import annotations

import io
import re
import signal
from pathlib import Path

import pytest
from rich.console import Console

from localft.cli.progress import Bars
from localft.events import RunStarted, Stage, Step
from tests.command_support import localft

EXPORT = Path(__file__).resolve().parent.parent / "examples" / "linkedin-export.zip"
# What bitsandbytes, transformers and Python warnings print when nothing routes them.
LIBRARY_NOISE = ("kernels-community", "Loading weights", "FutureWarning", "warnings.warn", "it/s]")


def plain_bars() -> tuple[Bars, io.StringIO]:
    out = io.StringIO()
    return Bars(console=Console(file=out, width=150)), out


def test_plain_lines_give_the_eta_at_this_sessions_pace():
    bars, out = plain_bars()
    assert not bars.terminal
    with bars:
        bars.show(RunStarted("r", "torch", "m", "cpu", total_steps=40, time=100.0))
        for step in range(1, 21):  # a step every 2 s from t=100
            bars.show(Step(step, 40, 2.0 - step / 100, 1e-4, 512 * step, 256.0, 2**30, time=100.0 + 2 * step))
    lines = out.getvalue().splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["10/40", "20/40"]  # every 10 steps, no others
    # 20 steps left at 2 s a step (timed from step 1): 40 s; elapsed is since RunStarted.
    assert steps[1].endswith("elapsed 0:00:40  eta 0:00:40"), steps[1]
    assert "loss 1.800  256 tok/s  peak 1.0 GiB" in steps[1]
    assert "\r" not in out.getvalue() and "\x1b[" not in out.getvalue()


def test_a_reinforcement_steps_line_carries_its_mean_reward_and_spread():
    bars, out = plain_bars()
    with bars:
        bars.show(RunStarted("r", "torch", "m", "cpu", total_steps=10, time=100.0))
        bars.show(Step(10, 10, 0.25, 1e-5, 900, 30.0, 2**30, time=120.0, reward=0.412, reward_std=0.087))
    assert "loss 0.250  reward 0.412 ± 0.087  30 tok/s" in out.getvalue()


def test_plain_stage_lines_are_throttled_and_each_pass_has_its_own_eta():
    bars, out = plain_bars()
    with bars:
        for i in range(0, 11):  # a tensor a second
            bars.show(Stage("convert", i, 10, "Q8_0", time=1000.0 + i))
        for i in range(0, 5):  # the next file: a fresh pass, 4 s a tensor
            bars.show(Stage("convert", i, 4, "F16", time=2000.0 + 4 * i))
    lines = out.getvalue().splitlines()
    assert lines == [
        "convert Q8_0: 0/10  elapsed 0:00:00  eta -:--:--",
        "convert Q8_0: 5/10  elapsed 0:00:05  eta 0:00:05",  # 5 s after the last line, not sooner
        "convert: done (Q8_0)",
        "convert F16: 0/4  elapsed 0:00:00  eta -:--:--",
        "convert F16: 2/4  elapsed 0:00:08  eta 0:00:08",
        "convert: done (F16)",
    ]


@pytest.mark.slow
def test_real_train_and_export_print_plain_lines_and_no_library_warning(localft_home, tiny_models):
    """`localft train` and `localft export` with pipes for stdout and stderr (a log, CI, `| tee`)."""
    trained = localft(
        "train", EXPORT, "--model", tiny_models("llama"), "--steps", "20", "--name", "plain",
        "--set", "max_seq_len=128", "--set", "eval_every=20",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    (run,) = (localft_home / "runs").iterdir()
    exported = localft("export", run.name, "--quant", "Q8_0")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    screen = "".join(r.stdout + r.stderr for r in (trained, exported))
    assert "\r" not in screen and "\x1b[" not in screen  # nothing drawn in place into a pipe
    steps = re.findall(
        r"^step (\d+)/20 loss [\d.]+ .* elapsed \d:\d\d:\d\d  eta \d:\d\d:\d\d$", trained.stderr, re.M
    )
    assert steps == ["10", "20"], trained.stderr
    for stage in ("merge", "convert", "verify"):
        assert re.search(rf"^{stage} .*elapsed \d:\d\d:\d\d  eta ", exported.stderr, re.M), exported.stderr
        assert f"{stage}: done" in exported.stderr
    for noise in LIBRARY_NOISE:
        assert noise not in screen, noise
    # The libraries did speak: into the log, once each per process.
    log = (localft_home / "logs" / "libraries.log").read_text()
    from bitsandbytes.functional import has_avx512bf16

    looked_for_kernel = 1 if has_avx512bf16() else 0  # bitsandbytes looks only on an AVX512-BF16 CPU
    assert log.count("Failed to load CPU gemm_4bit_forward from kernels-community") == looked_for_kernel
    assert "FutureWarning" in log
    train_log = (run / "train.log").read_text()
    assert "Loading weights" not in train_log and train_log.count("kernels-community") <= 1


def test_a_plain_line_is_never_wrapped_and_its_brackets_are_kept():
    """Off a terminal a long line (a path in an import stage) stays one line, as written."""
    out = io.StringIO()
    bars = Bars(console=Console(file=out, width=40))
    long = "import reading /tmp/a-rather-long-folder/[2024] posts.jsonl"
    bars.show(Stage("import", 0, 4, long.removeprefix("import "), time=100.0))
    assert out.getvalue().splitlines() == [f"{long}: 0/4  elapsed 0:00:00  eta -:--:--"]


def test_a_ctrl_c_while_an_event_is_drawn_asks_the_worker_to_stop(localft_home, monkeypatch):
    """A Ctrl-C lands wherever the CLI is: one during a redraw escaped as a detach, and the worker
    trained on."""
    from localft.cli import progress
    from tests.tui_support import make_run, start_replay

    run = make_run(events=None)
    worker = start_replay(run, delay=0.5)  # ~20 s unless stopped: it cannot end on its own first
    show, interrupted = progress.Bars.show, []

    def show_then_interrupt(self, event):
        show(self, event)
        if isinstance(event, Step) and not interrupted:
            interrupted.append(event.step)
            raise KeyboardInterrupt  # where the signal lands: inside the drawing of a step

    monkeypatch.setattr(progress.Bars, "show", show_then_interrupt)
    try:
        progress.watch_run(run)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C escaped watch_run: a detach, and the worker was never asked to stop")
    finally:
        worker.kill()
        worker.wait()
    assert interrupted and run.stop_path.is_file()
    assert worker.returncode == -signal.SIGINT  # the stop's SIGINT ended the replay, not the kill
