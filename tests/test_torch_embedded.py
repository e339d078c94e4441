"""The embedded model (SmolLM2-135M) learns the sample LinkedIn export in 30 steps on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from localft.config import DataSpec, TrainSpec
from localft.events import Eval, Step
from localft.run.folder import new_run
from tests.training import train_run

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "linkedin-export.zip"


@pytest.mark.slow
def test_embedded_model_validation_loss_goes_down(tmp_path):
    from localft.data.dataset import build_dataset

    spec = TrainSpec(
        model="embedded", device="cpu", steps=30, batch_size=1, max_seq_len=256, learning_rate=5e-4,
        warmup_steps=3, eval_every=15, eval_batches=4, save_every=15, seed=0,
    )  # fmt: skip
    run = new_run(spec, root=tmp_path / "runs")
    build_dataset(SAMPLE, DataSpec(), run.data_dir)
    events = train_run(spec, run)

    evals = [e.val_loss for e in events if isinstance(e, Eval)]
    assert len(evals) == 2
    first_losses = [e.loss for e in events if isinstance(e, Step)][:3]
    # Validation before training is not measured; the first training losses stand in for it.
    assert evals[-1] < sum(first_losses) / 3 - 0.3
    assert evals[-1] < evals[0]
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
