"""Vision-language checkpoints (Qwen3.5, Gemma 3 4B and up, Gemma 4) resolve to their language
model: a text-only folder, made once, whose logits on text are the checkpoint's own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tiny import family_config


def tiny_vision_language(kind: str, out):
    """A tiny random vision-language checkpoint saved the way transformers saves the real ones."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if kind == "qwen3.5":
        vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                      patch_size=4, temporal_patch_size=2, spatial_merge_size=2)  # fmt: skip
        config = tf.Qwen3_5Config(text_config=family_config("qwen3.5", 512).to_dict(), vision_config=vision)
        model = tf.Qwen3_5ForConditionalGeneration(config)
    else:
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      image_size=32, patch_size=8)  # fmt: skip
        text = family_config("gemma3", 512).to_dict()
        config = tf.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
        model = tf.Gemma3ForConditionalGeneration(config)
    model.save_pretrained(out)
    from transformers import AutoTokenizer

    from localft.plan.catalog import embedded_model_dir

    AutoTokenizer.from_pretrained(embedded_model_dir()).save_pretrained(out)
    (out / "chat_template.jinja").write_text("{{ messages[0]['content'] }}", encoding="utf-8")
    return model.eval()


@pytest.mark.parametrize(
    ("kind", "arch"), [("qwen3.5", "Qwen3_5ForCausalLM"), ("gemma3", "Gemma3ForCausalLM")]
)
def test_language_model_is_taken_out_once_with_the_same_logits(tmp_path, kind, arch):
    import torch
    from transformers import AutoModelForCausalLM

    from localft.plan.catalog import resolve_model

    source = tmp_path / "vlm"
    vlm = tiny_vision_language(kind, source)
    text_dir = resolve_model(str(source))
    assert text_dir != source and (text_dir / "chat_template.jinja").is_file()
    config = json.loads((text_dir / "config.json").read_text())
    assert config["architectures"] == [arch] and "vision_config" not in config
    from localft.export.weights import SafetensorsFolder

    names = SafetensorsFolder(text_dir).names()
    assert names and all(
        n.startswith(("model.layers.", "model.embed", "model.norm", "lm_head")) for n in names
    )

    ids = torch.tensor([[1, 5, 9, 33, 47, 101, 200, 7, 8, 300]])
    text_model = AutoModelForCausalLM.from_pretrained(text_dir, dtype=torch.float32).eval()
    assert type(text_model).__name__ == arch
    with torch.no_grad():
        want, got = vlm(input_ids=ids).logits, text_model(input_ids=ids).logits
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    # The converter and mlx-lm go by the config, not by what transformers makes of the tensors.
    assert config["tie_word_embeddings"] == ("lm_head.weight" not in names)

    stamp = (text_dir / "config.json").stat().st_mtime_ns
    assert resolve_model(str(source)) == text_dir  # made once
    assert (text_dir / "config.json").stat().st_mtime_ns == stamp


def test_a_text_model_folder_resolves_to_itself(tiny_models):
    from localft.plan.catalog import resolve_model

    assert resolve_model(str(tiny_models("llama"))) == tiny_models("llama")
