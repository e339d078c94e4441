"""Merging the adapter into the base gives the logits of base + adapter."""

from __future__ import annotations

import json

import pytest

from tests.training import make_run, train_run


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_merged_logits_equal_base_plus_adapter(tmp_path, tiny_models, arch):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from localft.backends.torch import TorchBackend

    spec, run = make_run(tmp_path, tiny_models(arch), steps=4, learning_rate=5e-3, n_valid=0)
    train_run(spec, run)
    out = TorchBackend().merge(run, run.merged_dir)

    assert out == run.merged_dir
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (out / name).is_file(), name
    assert "quantization_config" not in json.loads((out / "config.json").read_text())

    tok = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_models(arch), dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, run.adapter_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    plain = AutoModelForCausalLM.from_pretrained(tiny_models(arch), dtype=torch.float32).eval()
    for prompt in ["Write about coffee.", "I love jazz. That is all.", "Hello"]:
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            want = with_adapter(ids).logits
            got = merged(ids).logits
            before = plain(ids).logits
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
        assert (want - before).abs().max() > 1e-3  # the adapter changed something worth merging
