"""One plan for every face: `recipe run --plan`, the run a recipe makes, the dashboard's New run form
and the run the dashboard starts all show and train the same plan for the same settings, and
README's demo description is that plan."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import psutil
import pytest

from localft.events import Log, read_events
from localft.paths import runs_dir
from localft.plan.hardware import Machine
from localft.plan.planner import describe, plan, read_plan
from localft.recipes import get_recipe
from localft.recipes.pipeline import open_recipe_run, recipe_spec
from localft.run.folder import RunDir
from localft.tui.app import LocalftApp
from localft.tui.screens.training import TrainingScreen
from tests.test_cli import run_cli
from tests.tui_support import MACHINE, wait_until

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "linkedin-export.zip"


def same_plan(a, b) -> bool:
    """Equal but for the free memory, which moves between two calls."""
    return a.to_dict() | {"memory_available": 0} == b.to_dict() | {"memory_available": 0}


def lines_without_free_memory(lines: list[str]) -> list[str]:
    return [re.sub(r"of [\d.]+ \w+ RAM free", "of X RAM free", line) for line in lines]


def test_readme_describes_the_plan_the_demo_gets_on_a_cpu():
    from localft.run.runner import preview_data

    cpu = Machine.from_report(MACHINE)
    spec = recipe_spec(get_recipe("style-clone"), "embedded", machine=cpu)
    p = plan(spec, cpu, preview_data(spec, SAMPLE).data)
    size = describe(p)[0].split("): ", 1)[1]  # "116 steps of 2 rows × 256 tokens = 2 epochs of ..."
    demo = (ROOT / "README.md").read_text(encoding="utf-8").split("## The style-clone demo", 1)[1]
    assert size in " ".join(demo.split()), size
    assert f"early stopping after {p.early_stopping_patience}" in " ".join(demo.split())


@pytest.fixture
def anyio_backend():
    return "asyncio"


def end_run(run: RunDir) -> None:
    """Kill the dashboard's recipe process and the worker it started (no need to be gentle)."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if run.id in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.kill(proc.info["pid"], signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_cli_the_recipe_and_the_dashboard_make_the_same_plan(capsys):
    code, out, err = run_cli(
        capsys, "recipe", "run", "style-clone", "--from", str(SAMPLE), "--model", "embedded", "--plan"
    )
    assert code == 0, err
    cli_lines = [line.removeprefix("plan: ") for line in out.splitlines() if line.startswith("plan: ")]
    assert "epochs of 120 examples" in cli_lines[0] and not list(runs_dir().iterdir())  # --plan made no run

    made = open_recipe_run(get_recipe("style-clone"), SAMPLE, model="embedded")  # what `recipe run` trains
    made.do_import()
    recipe_plan = read_plan(made.run.path)
    assert lines_without_free_memory(describe(recipe_plan)) == lines_without_free_memory(cli_lines)

    app = LocalftApp(attach=False)  # this machine's own report, as a user gets it
    run = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("n", "ctrl+o")  # the demo: style-clone, the sample export, the embedded model
            form = app.screen
            await wait_until(pilot, lambda: form.plan is not None and form.plan.train_rows, timeout=120)
            shown = str(form.query_one("#plan").content)
            assert same_plan(form.plan, recipe_plan) and describe(form.plan)[0] in " ".join(shown.split("\n"))
            await pilot.press("ctrl+s")  # the run is made here, on that plan
            await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen), timeout=120)
            run = app.screen.run
            assert same_plan(read_plan(run.path), form.plan)
            await wait_until(pilot, lambda: run.worker_pid() is not None, timeout=120)
            assert run.read_spec().steps == form.plan.steps  # what the worker trains
            # The recipe process continues the run by id and plans nothing again.
            plans = [
                e
                for e in read_events(run.events_path)
                if isinstance(e, Log) and e.message.startswith("plan: ")
            ]
            assert len(plans) == len(describe(form.plan))
    finally:
        if run is not None:
            end_run(run)
