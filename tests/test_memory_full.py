"""Full fine-tuning in the memory estimate: optimizer states and gradients for every weight, and a
refusal with the numbers when they do not fit."""

import pytest

from localft.config import TrainSpec, merge_overrides
from localft.errors import ConfigError, DoesNotFit
from localft.plan.catalog import catalog_entry
from localft.plan.memory import check_fits, estimate_memory, model_shape


def test_full_fine_tuning_counts_adam_states_and_a_gradient_for_every_weight():
    entry = catalog_entry("qwen2.5-0.5b")
    params = model_shape(entry).params
    lora = estimate_memory(TrainSpec(model=entry.name), entry, "cpu")
    full = estimate_memory(TrainSpec(model=entry.name, weights="full"), entry, "cpu")
    assert full.lora == 0 and full.optimizer == params * (8 + 4)  # two fp32 moments + an fp32 gradient
    assert full.weights == lora.weights and full.activations == lora.activations
    assert full.total - lora.total == params * 12 - lora.lora - lora.optimizer
    # On a GPU too: fp32 master weights (autocast computes in bf16), fp32 moments and gradients.
    cuda = estimate_memory(TrainSpec(model=entry.name, weights="full"), entry, "cuda")
    assert cuda.weights == params * 4 and cuda.optimizer == params * 12


def test_a_full_run_that_does_not_fit_is_refused_with_the_numbers():
    entry = catalog_entry("qwen2.5-1.5b")
    full = estimate_memory(TrainSpec(model=entry.name, weights="full", batch_size=1), entry, "cpu")
    lora = estimate_memory(TrainSpec(model=entry.name, batch_size=1), entry, "cpu")
    room = (lora.total + full.total) // 2  # LoRA fits here, full fine-tuning does not
    check_fits(lora, room)
    with pytest.raises(DoesNotFit, match="optimizer states and gradients of all weights") as err:
        check_fits(full, room)
    assert "--set weights=lora" in str(err.value)


def test_full_fine_tuning_of_a_4bit_base_is_a_config_error():
    with pytest.raises(ConfigError, match="weights full"):
        merge_overrides(TrainSpec(), {"weights": "full", "quantize": "4bit"})
