"""Several processes in the faces: the plan and doctor count devices, the dashboard's New run
offers them where more than one is found, and the run view shows the world size and each rank's
throughput."""

from __future__ import annotations

import pytest

from localft.config import TrainSpec
from localft.errors import ConfigError
from localft.events import Step
from localft.plan.hardware import Machine
from localft.plan.planner import plan, write_plan
from localft.tui.app import LocalftApp
from localft.tui.messages import RunEvents
from localft.tui.screens.new_run import NewRunScreen
from localft.tui.screens.training import TrainingScreen
from tests.tui_support import MACHINE, make_run, wait_until


@pytest.fixture
def anyio_backend():
    return "asyncio"


TWO_GPUS = {
    **MACHINE,
    "machine": {
        **MACHINE["machine"],
        "gpus": [{"name": "Test GPU", "vram_bytes": 24 * 2**30, "driver": "1"}] * 2,
    },
    "backends": {
        **MACHINE["backends"],
        "torch": {"ok": True, "device": "cuda", "reason": "CUDA: Test GPU (x2)", "devices": 2},
    },
}


def test_plan_counts_processes_and_shares_cpu_memory_among_them():
    machine = Machine.from_report(MACHINE)
    one = plan(TrainSpec(backend="torch", batch_size=2), machine)
    two = plan(TrainSpec(backend="torch", batch_size=1, nproc=2), machine)
    assert two.world_size == 2 and two.global_batch == one.global_batch == 2
    assert "processes: 2 (data-parallel), 2 rows a step in all" in two.notes
    assert two.memory_available == one.memory_available // 2  # both processes live in this RAM
    fsdp = plan(TrainSpec(backend="torch", batch_size=1, nproc=2, sharding="fsdp", weights="full"), machine)
    ddp = plan(TrainSpec(backend="torch", batch_size=1, nproc=2, weights="full"), machine)
    assert fsdp.memory_needed < ddp.memory_needed  # weights and optimizer states sharded over 2


def test_plan_refuses_more_processes_than_gpus_and_sharded_preference_tuning():
    gpus = Machine.from_report(TWO_GPUS)
    assert plan(TrainSpec(backend="torch", nproc=2), gpus).world_size == 2
    with pytest.raises(ConfigError, match="--nproc 3 asks for more processes than the 2 cuda device"):
        plan(TrainSpec(backend="torch", nproc=3), gpus)
    with pytest.raises(ConfigError, match="dpo \\(preference tuning\\) trains on one process"):
        plan(TrainSpec(backend="torch", nproc=2, method="dpo"), gpus)
    with pytest.raises(ConfigError, match="a classification head \\(--head\\) trains on one process"):
        plan(TrainSpec(backend="torch", nproc=2, head=True), gpus)


def test_doctor_names_the_device_count():
    from localft.cli.doctor import devices_line

    assert devices_line(TWO_GPUS["backends"]).startswith(
        "Devices   2 cuda devices: `localft train ... --nproc 2`"
    )
    assert devices_line(MACHINE["backends"]).startswith("Devices   1 ")


@pytest.mark.anyio
async def test_new_run_offers_the_devices_only_where_there_are_several():
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        await wait_until(
            pilot, lambda: isinstance(app.screen, NewRunScreen) and app.screen.machine is not None
        )
        assert not app.screen.query_one("#devices-field").display

    app = LocalftApp(machine=TWO_GPUS, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        screen = app.screen
        await wait_until(pilot, lambda: screen.machine is not None)
        field = screen.query_one("#nproc")
        assert screen.query_one("#devices-field").display
        assert [str(label) for label, _ in field._options] == ["1 cuda", "2 cuda"]
        field.value = 2
        await wait_until(pilot, lambda: screen.spec is not None and screen.spec.nproc == 2)


@pytest.mark.anyio
async def test_run_view_shows_world_size_and_per_rank_throughput():
    run = make_run(events=None)
    write_plan(
        run.path,
        plan(TrainSpec(backend="torch", batch_size=1, nproc=2, steps=30), Machine.from_report(MACHINE)),
    )
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.open_training(run.path)
        await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen))
        screen = app.screen
        screen.post_message(RunEvents(str(run.path), [Step(1, 30, 5.0, 1e-4, 100, 300.0, 2**20)]))
        await wait_until(pilot, lambda: screen.view.step == 1)
        assert "300 tok/s (150 per rank x 2)" in str(screen.query_one("#stats").content)
        assert "2 processes" in str(screen.query_one("#run-title").content)
