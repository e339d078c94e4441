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


@pytest.mark.slow
def test_a_qlora_run_merges_into_the_full_precision_base(tmp_path, tiny_models):
    """A run trained on an NF4 base (bitsandbytes on CPU) merges into the fp32 base, never into the
    4-bit weights: the merged logits are fp32 base + adapter (largest difference measured 3.6e-7,
    held to 1e-4), while those of the 4-bit base + adapter the run trained through differ by
    ~0.1 (measured 0.085-0.10; the adapter itself moves them by 0.17-0.48)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from localft.backends.torch import TorchBackend

    model = tiny_models("llama")
    spec, run = make_run(
        tmp_path, model, steps=2, learning_rate=5e-3, n_train=8, n_valid=0, max_seq_len=64, quantize="4bit"
    )
    train_run(spec, run)
    out = TorchBackend().merge(run, run.merged_dir)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"

    tok = AutoTokenizer.from_pretrained(out)
    full = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
                                     run.adapter_dir).eval()  # fmt: skip
    nf4 = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
    )
    four_bit_base = AutoModelForCausalLM.from_pretrained(model, quantization_config=nf4, device_map="cpu")
    four_bit = PeftModel.from_pretrained(four_bit_base, run.adapter_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    plain = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    for prompt in ["Write about coffee.", "I love jazz. That is all.", "Hello"]:
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            want, got = full(ids).logits, merged(ids).logits
            through_4bit, before = four_bit(ids).logits, plain(ids).logits
        err = (got - want).abs().max()
        assert err < 1e-4, err
        assert (want - before).abs().max() > 1e-3  # the adapter changed something worth merging
        assert (got - through_4bit).abs().max() > 100 * max(err, 1e-7)  # the 4-bit weights were not merged
