"""Full fine-tuning (`weights = "full"`) through the one training loop on torch and MLX: every weight
trains, kill -9 then resume lands on the uninterrupted loss curve with the same weights, and the
run merges into an HF folder that converts to a GGUF llama.cpp loads."""

from __future__ import annotations

import numpy as np
import pytest

from localft.events import Log, RunStarted, Step
from tests.training import kill_9_after_checkpoint, make_run, train_run

BACKENDS = ["torch", pytest.param("mlx", marks=pytest.mark.mlx)]
WEIGHTS = {"torch": "model.safetensors", "mlx": "adapters.safetensors"}


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "mlx":
        pytest.importorskip("mlx_lm")
    return request.param


def load_weights(path, backend) -> dict:
    if backend == "torch":
        from safetensors.numpy import load_file

        return load_file(path)
    import mlx.core as mx

    return {k: np.array(v.astype(mx.float32)) for k, v in mx.load(str(path)).items()}


@pytest.mark.slow
def test_full_fine_tuning_survives_kill_9_and_exports(tmp_path, tiny_models, backend):
    settings = dict(backend=backend, weights="full", steps=8, save_every=3, eval_every=100, n_valid=0,
                    batch_size=1, grad_accum=2, max_seq_len=96, learning_rate=1e-3)  # fmt: skip
    model = tiny_models("llama")
    spec, reference = make_run(tmp_path / "a", model, **settings)
    ref_events = train_run(spec, reference)
    expected = {e.step: e.loss for e in ref_events if isinstance(e, Step)}
    assert expected[8] < expected[1]
    said = " ".join(e.message for e in ref_events if isinstance(e, Log))
    n_params = sum(v.size for v in load_weights(reference.adapter_dir / WEIGHTS[backend], backend).values())
    assert n_params > 100_000 and not (reference.adapter_dir / "adapter_model.safetensors").exists()
    assert f"{n_params:,} trainable parameters" in said  # every weight, not adapters

    spec, run = make_run(tmp_path / "b", model, **settings)
    killed_at = kill_9_after_checkpoint(run, step=3)
    assert killed_at == run.checkpoint_path(3)

    events = train_run(spec, run)
    started = [e for e in events if isinstance(e, RunStarted)]
    assert started[-1].resumed_from == int(killed_at.name.split("-")[1])
    got = {e.step: e.loss for e in events if isinstance(e, Step)}
    assert sorted(got) == list(range(1, 9))
    for step in range(1, 9):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    a = load_weights(reference.adapter_dir / WEIGHTS[backend], backend)
    b = load_weights(run.adapter_dir / WEIGHTS[backend], backend)
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)

    # Export: the merged folder holds the trained weights, and converts to a GGUF llama.cpp loads.
    import torch
    from transformers import AutoModelForCausalLM

    from localft.run.export import merge_run

    merged = merge_run(run)
    tuned = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    changed = [n for n, p in tuned.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])]
    assert len(changed) > len(list(base.named_parameters())) // 2  # not just adapted projections
    pytest.importorskip("llama_cpp")
    from localft.export.gguf import convert_folder
    from localft.export.llamacpp import close_llama, load_llama

    convert_folder(merged, tmp_path / "full-F16.gguf", "F16", name="full")
    llm = load_llama(tmp_path / "full-F16.gguf", n_ctx=64)
    assert llm.n_vocab() == tuned.config.vocab_size
    close_llama(llm)
