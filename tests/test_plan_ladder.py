"""The recipes' "largest catalog model that fits": which model the plan picks on machines named
explicitly (a CUDA GPU of a given size, an Apple-silicon Mac, a CPU box), not on the machine that
runs the tests, and the refusal, with the numbers, when nothing fits."""

from __future__ import annotations

import pytest

from localft.backends import Availability
from localft.errors import DoesNotFit
from localft.plan.hardware import Machine
from localft.plan.planner import apply_plan, plan
from localft.recipes import get_recipe
from localft.recipes.pipeline import recipe_spec

GiB = 2**30
NO_MLX = Availability(False, "", "MLX runs on Apple silicon (or Linux with mlx[cpu])")


def cuda_pc(vram_gib: float, ram_gib: float = 32) -> Machine:
    torch = Availability(True, "cuda", "CUDA: NVIDIA GeForce RTX (QLoRA)")
    return Machine({"torch": torch, "mlx": NO_MLX}, int(ram_gib * GiB), int(vram_gib * GiB), gpus_listed=1)


def mac(free_gib: float) -> Machine:
    backends = {"mlx": Availability(True, "gpu", "MLX on Metal"), "torch": Availability(True, "mps", "MPS")}
    return Machine(backends, int(free_gib * GiB), unified=True)


def cpu_box(ram_gib: float) -> Machine:
    return Machine({"torch": Availability(True, "cpu", "CPU: fp32 LoRA"), "mlx": NO_MLX}, int(ram_gib * GiB))


# Style-clone's GPU settings (4 x 1024-token rows, bf16 LoRA): qwen2.5-1.5b needs ~14.9 GiB on CUDA
# and ~17.5 GiB on MLX, ~4.5 GiB with gradient checkpointing (localft.plan.memory's estimates). Where
# only recomputing activations makes it fit, the plan turns that on and says why.
@pytest.mark.parametrize(
    ("machine", "backend", "device", "model", "recomputed"),
    [
        (cuda_pc(16), "torch", "cuda", "qwen2.5-1.5b", False),
        (cuda_pc(8), "torch", "cuda", "qwen2.5-1.5b", True),
        (mac(20), "mlx", "gpu", "qwen2.5-1.5b", False),  # a 24 GiB Mac with 20 GiB free
        (mac(12), "mlx", "gpu", "qwen2.5-1.5b", True),  # a 16 GiB Mac with 12 GiB free
        (cuda_pc(4), "torch", "cuda", "qwen2.5-0.5b", True),
    ],
    ids=["cuda-16GiB", "cuda-8GiB", "mac-24GiB", "mac-16GiB", "cuda-4GiB"],
)
def test_the_largest_ladder_model_that_fits_is_picked(machine, backend, device, model, recomputed):
    recipe = get_recipe("style-clone")
    spec = recipe_spec(recipe, None, machine=machine)
    assert spec.model == model and spec.max_seq_len == recipe.train_defaults["max_seq_len"]
    chosen = plan(spec, machine)
    assert (chosen.backend, chosen.device, chosen.fits) == (backend, device, True)
    assert chosen.memory_needed <= machine.memory_for(device)[0]
    assert chosen.gradient_checkpointing is recomputed
    said = [n for n in chosen.notes if n.startswith("gradient checkpointing: on")]
    assert bool(said) is recomputed and apply_plan(spec, chosen).gradient_checkpointing is recomputed
    ladder = recipe.model_ladder
    for larger in ladder[: ladder.index(model)]:  # every model above it really does not fit
        assert not plan(spec.model_copy(update={"model": larger}), machine).fits


def test_a_cpu_box_trains_the_embedded_model_even_where_larger_ones_fit():
    box = cpu_box(20)  # a 24 GiB PC without a GPU
    recipe = get_recipe("style-clone")
    spec = recipe_spec(recipe, None, machine=box)
    assert spec.model == "embedded" and spec.max_seq_len == recipe.cpu_defaults["max_seq_len"]
    assert (plan(spec, box).backend, plan(spec, box).device) == ("torch", "cpu")
    # Not for lack of memory: a larger model fits the RAM, but takes hours an epoch on a CPU.
    assert plan(spec.model_copy(update={"model": "qwen2.5-0.5b"}), box).fits


@pytest.mark.parametrize(
    ("machine", "message"),
    [
        (cuda_pc(1), r"needs about 4\.2 GiB but only 1\.0 GiB of GPU memory is free .*try --batch-size 1"),
        (
            mac(1),
            r"needs about 6\.3 GiB but only 1\.0 GiB of unified memory is free .*try --batch-size 1 --max-seq-len 64",
        ),
        (cpu_box(0.5), r"needs about 2\.0 GiB but only 512\.0 MiB of RAM is free .*weights alone do not fit"),
    ],
    ids=["cuda-1GiB", "mac-1GiB", "cpu-1GiB"],
)
def test_a_machine_where_nothing_fits_is_refused_with_the_numbers(machine, message):
    with pytest.raises(DoesNotFit, match=message):
        recipe_spec(get_recipe("style-clone"), None, machine=machine)


@pytest.mark.parametrize(
    ("preset", "machine", "backend", "device"),
    [
        ("cuda-qlora", cuda_pc(8), "torch", "cuda"),  # "a 1.5B model in 4-bit on an 8-12 GB GPU"
        ("cuda-qlora", cuda_pc(12), "torch", "cuda"),
        ("mac-mlx", mac(12), "mlx", "gpu"),  # "an Apple-silicon Mac (16 GB unified memory)"
        ("cpu-small", cpu_box(6), "torch", "cpu"),  # an 8 GiB laptop with 6 GiB free
    ],
    ids=["cuda-qlora-8GiB", "cuda-qlora-12GiB", "mac-mlx-16GiB", "cpu-small-8GiB"],
)
def test_each_builtin_preset_fits_the_machine_it_is_written_for(preset, machine, backend, device):
    from localft.config import load_preset

    chosen = plan(load_preset(preset), machine)
    assert (chosen.backend, chosen.device) == (backend, device)
    assert chosen.fits, chosen.verdict
