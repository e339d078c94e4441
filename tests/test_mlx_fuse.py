"""Fusing an MLX adapter into an HF folder: transformers on the fused folder must reproduce MLX's
base + adapter logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mlx_lm")

from localft.config import LoraSpec, TrainSpec  # noqa: E402
from localft.run.folder import new_run  # noqa: E402

pytestmark = pytest.mark.mlx


def random_adapter(base_dir, lora: LoraSpec, quantize: bool, out_dir):
    """An adapter with non-zero random weights, saved the way training saves it."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_map

    from localft.backends.mlx.modeling import adapter_config, add_adapters, load_base, save_adapter

    model, _ = load_base(base_dir, mx.float32, quantize=quantize)
    cfg = adapter_config(model, lora)
    add_adapters(model, cfg)
    mx.random.seed(1)
    model.update(tree_map(lambda p: p + 0.05 * mx.random.normal(p.shape), model.trainable_parameters()))
    save_adapter(model, cfg, out_dir)
    return dict(tree_flatten(model.trainable_parameters()))


def mlx_logits(base_dir, adapter_dir, ids: list[int]) -> np.ndarray:
    """MLX's logits from the full-precision base with the adapter applied as LoRA layers (unfused)."""
    import mlx.core as mx

    from localft.backends.mlx.modeling import (
        add_adapters,
        load_adapter_weights,
        load_base,
        read_adapter_config,
    )

    model, _ = load_base(base_dir, mx.float32, quantize=False)
    add_adapters(model, read_adapter_config(adapter_dir))
    load_adapter_weights(model, adapter_dir)
    model.eval()
    return np.array(model(mx.array([ids]))[0])


@pytest.mark.parametrize(("arch", "quantize", "dora"), [("llama", "none", False), ("mistral", "4bit", True)])
def test_fused_folder_matches_mlx_base_plus_adapter(tiny_models, arch, quantize, dora):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from localft.backends import get_backend

    base = tiny_models(arch)
    lora = LoraSpec(rank=4, alpha=8, dora=dora, targets=["q_proj", "v_proj", "down_proj"])
    spec = TrainSpec(model=str(base), backend="mlx", quantize=quantize, lora=lora)
    run = new_run(spec)
    trained = random_adapter(base, lora, quantize == "4bit", run.adapter_dir)
    assert any("down_proj" in k for k in trained) and not any("k_proj" in k for k in trained)

    out = get_backend("mlx").merge(run, run.merged_dir)

    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"} <= names
    config = json.loads((out / "config.json").read_text())
    assert "quantization" not in config and "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok.apply_chat_template([{"role": "user", "content": "Hello there, how are you?"}], tokenize=True,
                                  add_generation_prompt=True, return_dict=False)  # fmt: skip
    hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        got = hf(torch.tensor([ids])).logits[0].numpy()
    want = mlx_logits(base, run.adapter_dir, ids)
    base_only = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with torch.no_grad():
        before = base_only(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(before - want).max() > 1e-3  # the adapter changes the output
    assert np.abs(got - want).max() < 2e-4
