"""Snapshots of every dashboard screen at a laptop terminal (100x30) and a large one (160x48), and
of the Export and Chat screens with a real GGUF (the embedded model's) and a greedy streamed reply."""

from __future__ import annotations

import os

import pytest

from localft.paths import runs_dir
from localft.run.folder import RunDir
from localft.tui.app import LocalftApp
from localft.tui.screens.chat import ChatScreen
from localft.tui.screens.export import ExportScreen
from localft.tui.screens.new_run import NewRunScreen
from localft.tui.screens.training import TrainingScreen
from tests.tui_support import MACHINE, make_run, wait_until

SIZES = [(100, 30), (160, 48)]


def still_cursors(app):
    """A blinking cursor is drawn or not depending on timing: freeze it so snapshots are stable."""
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False


def training_done(screen):
    """Completed; the log is then pinned to its end (its own auto-scroll lands a refresh later)."""
    if screen.view.status != "completed":
        return False
    screen.query_one("#log").scroll_end(animate=False, immediate=True)
    return True


def runs_listed(app):
    return app.screen.query_one("#runs").row_count == 2


async def home_ready(pilot):
    await wait_until(pilot, lambda: runs_listed(pilot.app))


def screen_ready(kind, condition=lambda screen: True):
    async def run_before(pilot):
        await home_ready(pilot)
        run = pilot.app.screen.runs[1].path  # the recorded, completed run
        screens = {"training": lambda: TrainingScreen(run), "export": lambda: ExportScreen(run),
                   "chat": lambda: ChatScreen(run_path=run), "new": NewRunScreen}  # fmt: skip
        await pilot.app.push_screen(screens[kind]())
        await wait_until(pilot, lambda: condition(pilot.app.screen))
        still_cursors(pilot.app)
        await pilot.pause(0.2)

    return run_before


@pytest.fixture
def runs():
    make_run("20261122-120000-demo")
    make_run("20261122-130000-fresh", events=None)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "kind",
    ["home", "new", "training", "export", "chat"],
)
def test_screen_snapshot(snap_compare, runs, kind, size):
    conditions = {
        "new": lambda s: "fits" in str(s.query_one("#fit").content),
        "training": training_done,
    }
    run_before = home_ready if kind == "home" else screen_ready(kind, conditions.get(kind, lambda s: True))
    app = LocalftApp(machine=MACHINE, attach=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_training_snapshot_light_theme(snap_compare, runs):
    async def run_before(pilot):
        await pilot.press("f2")
        await screen_ready("training", training_done)(pilot)

    app = LocalftApp(machine=MACHINE, attach=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


@pytest.fixture(scope="module")
def embedded_q8(tmp_path_factory):
    """The embedded model as a Q8_0 GGUF written by localft's converter (what an export leaves)."""
    from localft.export.gguf import convert_folder
    from localft.plan.catalog import embedded_model_dir

    out = tmp_path_factory.mktemp("gguf") / "embedded-Q8_0.gguf"
    return convert_folder(embedded_model_dir(), out, "Q8_0", name="embedded").path


@pytest.fixture
def exported(runs, embedded_q8) -> RunDir:
    """The recorded, completed run with its exported GGUF."""
    run = RunDir(runs_dir() / "20261122-120000-demo")
    run.gguf_dir.mkdir()
    os.link(embedded_q8, run.gguf_dir / f"{run.id}-Q8_0.gguf")
    return run


@pytest.mark.slow  # the embedded model's conversion: ~15 s
def test_export_snapshot_with_a_gguf(snap_compare, exported):
    def lists_it(screen):
        return f"{exported.id}-Q8_0.gguf" in str(screen.query_one("#export-result").content)

    app = LocalftApp(machine=MACHINE, attach=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=screen_ready("export", lists_it))


@pytest.mark.slow
@pytest.mark.llama
def test_chat_snapshot_with_a_streamed_reply(snap_compare, exported):
    async def run_before(pilot):
        await screen_ready("chat")(pilot)
        chat = pilot.app.screen
        chat.query_one("#system").value = "You are a helpful assistant."
        chat.query_one("#temperature").value = "0"  # greedy: the same reply every time
        chat.query_one("#max_tokens").value = "24"
        chat.query_one("#prompt").value = "What is the capital of France?"
        await pilot.press("enter")
        tuned = chat.query_one("#tuned")
        await wait_until(pilot, lambda: len(tuned.turns) == 2 and not chat.busy, timeout=120)
        assert "Paris" in tuned.turns[1]
        chat.close_sessions()  # llama.cpp's model is freed here, not at interpreter exit
        still_cursors(pilot.app)
        await pilot.pause(0.2)

    app = LocalftApp(machine=MACHINE, attach=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
