"""A peft LoRA adapter exported alone runs in llama.cpp on top of the base GGUF like the merged model."""

from __future__ import annotations

import numpy as np
import pytest

from localft.errors import ExportError
from localft.export.adapter import convert_adapter
from localft.export.gguf import convert_folder
from localft.export.llamacpp import close_llama, load_llama

TEXT = "Children compared the keeper's notes with modern weather data."


def _lora_adapter(base, out, **lora_kw):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"], **lora_kw
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # B starts at zero; make the adapter change the outputs
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    peft_model.save_pretrained(out)
    return peft_model


@pytest.mark.slow
def test_adapter_gguf_on_base_matches_merged_hf_model(tiny_models, tmp_path):
    import torch

    base = tiny_models("llama")
    peft_model = _lora_adapter(base, tmp_path / "adapter")
    base_gguf = convert_folder(base, tmp_path / "base-F32.gguf", "F32").path
    lora_gguf = convert_adapter(tmp_path / "adapter", base, tmp_path / "lora.gguf")

    llm = load_llama(base_gguf, n_ctx=64, logits_all=True, lora_path=lora_gguf)
    plain = load_llama(base_gguf, n_ctx=64, logits_all=True)
    try:
        ids = llm.tokenize(TEXT.encode(), add_bos=True)
        llm.eval(ids)
        plain.eval(ids)
        with_lora, without = np.array(llm.scores[: len(ids)]), np.array(plain.scores[: len(ids)])
    finally:
        close_llama(llm)
        close_llama(plain)
    merged = peft_model.merge_and_unload()
    with torch.no_grad():
        hf = merged(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(without - hf).max() > 0.05  # the adapter really changes the model
    assert np.abs(with_lora - hf).max() < 5e-3
    assert np.mean(with_lora.argmax(-1) == hf.argmax(-1)) == 1.0


def test_dora_adapter_is_refused(tiny_models, tmp_path):
    base = tiny_models("llama")
    _lora_adapter(base, tmp_path / "adapter", use_dora=True)
    with pytest.raises(ExportError, match="DoRA"):
        convert_adapter(tmp_path / "adapter", base, tmp_path / "lora.gguf")
    assert not (tmp_path / "lora.gguf").exists()
