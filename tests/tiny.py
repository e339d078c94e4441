"""Tiny random models of real architectures, with the embedded model's tokenizer, built in a folder.

Shared by the backend, export and dashboard tests; nothing is downloaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ARCHS = ("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3")

_COMMON = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6,
)  # fmt: skip


def tiny_config(arch: str, vocab_size: int):
    import transformers as tf

    kw = dict(_COMMON, vocab_size=vocab_size)
    if arch == "llama":
        return tf.LlamaConfig(**kw, tie_word_embeddings=True)
    if arch == "qwen2":
        return tf.Qwen2Config(**kw, tie_word_embeddings=True)
    if arch == "qwen3":
        return tf.Qwen3Config(**kw, head_dim=16, tie_word_embeddings=True)
    if arch == "mistral":
        return tf.MistralConfig(**kw, tie_word_embeddings=False)
    if arch == "gemma2":
        return tf.Gemma2Config(**kw, head_dim=16, query_pre_attn_scalar=16, sliding_window=64)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(**kw, head_dim=16, query_pre_attn_scalar=16, sliding_window=64)
    if arch == "phi3":
        kw["num_key_value_heads"] = 4
        return tf.Phi3Config(**kw, pad_token_id=0, tie_word_embeddings=False)
    raise ValueError(arch)


def build_tiny_model(
    out: Path, arch: str = "llama", tokenizer_dir: Path | None = None, seed: int = 0
) -> Path:
    """Write a random `arch` model plus the embedded tokenizer to `out` and return `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from localft.models import embedded_model_dir

    tok_dir = tokenizer_dir or embedded_model_dir()
    tok = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    config = tiny_config(arch, len(tok))
    config.bos_token_id, config.eos_token_id = tok.bos_token_id, tok.convert_tokens_to_ids("<|im_end|>")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    template = Path(tok_dir) / "chat_template.jinja"
    if template.is_file() and not (out / "chat_template.jinja").exists():
        shutil.copy(template, out / "chat_template.jinja")
    return out
