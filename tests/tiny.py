"""Tiny random models of real architectures, built in a folder; nothing is downloaded.

`build_tiny_model` gives each architecture the embedded model's tokenizer (plumbing tests).
`build_family_model` gives each catalog family its real shape features (layer types, grouped
heads, head sizes, tied embeddings, rotary variants) at a tiny width, with the family's real
tokenizer and chat template from llama.cpp's test material (tests/real_material.py).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
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

    from localft.plan.catalog import embedded_model_dir

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


# --- catalog families ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A catalog family as the tests build it. `tokenizer` names a llama.cpp vocabulary
    (None: the embedded SmolLM2 tokenizer), `template` a real chat template by file stem (None:
    the tokenizer's own). `eos` is the tokenizer's eos as the family ships it, `end_of_turn` the
    token that ends an assistant turn; `renamed` gives vocabulary ids the family names otherwise
    than the stand-in vocabulary does."""

    name: str
    catalog: tuple[str, ...]  # catalog entries of this architecture
    tokenizer: str | None
    template: str | None
    eos: str
    end_of_turn: str
    renamed: dict[int, str] = field(default_factory=dict)
    stand_in: str = ""  # what differs from the real family, said plainly


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("smollm2", ("embedded", "smollm2-360m", "smollm2-1.7b"), None, None, "<|im_end|>", "<|im_end|>"),
        Family("qwen3", ("qwen3-0.6b", "qwen3-1.7b", "qwen3-4b"), "qwen2", "Qwen-Qwen3-0.6B",
               "<|im_end|>", "<|im_end|>"),
        Family("qwen3.5", ("qwen3.5-0.8b", "qwen3.5-2b", "qwen3.5-4b"), "qwen35", "Qwen3.5-4B",
               "<|im_end|>", "<|im_end|>",
               stand_in="llama.cpp's qwen35 test vocabulary has 151,936 tokens (the real one 248,320)"),
        Family("llama3.2", ("llama3.2-1b", "llama3.2-3b"), "llama-bpe", "meta-llama-Llama-3.2-3B-Instruct",
               "<|eot_id|>", "<|eot_id|>"),
        Family("smollm3", ("smollm3-3b",), "llama-bpe", "HuggingFaceTB-SmolLM3-3B", "<|im_end|>", "<|im_end|>",
               renamed={128011: "<|im_start|>", 128012: "<|im_end|>"},
               stand_in="Llama 3's vocabulary with the two reserved ids SmolLM3 uses for ChatML renamed"),
        Family("gemma3", ("gemma3-270m", "gemma3-1b", "gemma3-4b"), "gemma-4", "google-gemma-2-2b-it",
               "<eos>", "<end_of_turn>", renamed={105: "<start_of_turn>", 106: "<end_of_turn>"},
               stand_in="Gemma 4's vocabulary with ids 105/106 named as in Gemma 3; Gemma 2's template "
                        "(the same turn format; Gemma 3's folds the system prompt into the first user turn)"),
        Family("gemma4", ("gemma4-e2b", "gemma4-e4b"), "gemma-4", "google-gemma-4-31B-it", "<eos>", "<turn|>"),
        Family("phi4-mini", ("phi4-mini",), "phi-3", "microsoft-Phi-3.5-mini-instruct", "<|endoftext|>", "<|end|>",
               stand_in="Phi-3's SentencePiece vocabulary and Phi-3.5's template (Phi-4-mini's own 200k "
                        "vocabulary is not in llama.cpp's test material)"),
    )
}  # fmt: skip


def family_config(name: str, vocab_size: int):
    """The family's real architecture at a tiny width: the features that decide whether training,
    merging and conversion are right (layer types, head sizes, rotary variants) are all there."""
    import transformers as tf

    kw = dict(_COMMON, vocab_size=vocab_size)
    if name in ("smollm2", "llama3.2"):
        rope = None
        if name == "llama3.2":  # Llama 3.x long-context rotary scaling
            rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}  # fmt: skip
        if rope:
            kw["max_position_embeddings"] = 131072
        return tf.LlamaConfig(**kw, tie_word_embeddings=True, rope_parameters=rope)
    if name == "qwen3":  # head_dim * heads != hidden, as in the real models
        return tf.Qwen3Config(**kw, head_dim=32, tie_word_embeddings=True)
    if name == "qwen3.5":  # 3 gated-delta (recurrent) layers, then 1 gated full-attention layer
        kw.update(num_hidden_layers=4)
        return tf.Qwen3_5TextConfig(
            **kw, head_dim=32, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16,
            linear_value_head_dim=16, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 10_000_000.0, "partial_rotary_factor": 0.25,
                             "mrope_section": [2, 1, 1], "mrope_interleaved": True},
        )  # fmt: skip
    if name == "smollm3":  # every 4th layer without rotary embeddings
        kw.update(num_hidden_layers=4, num_key_value_heads=1)
        return tf.SmolLM3Config(**kw, tie_word_embeddings=True, rope_theta=5_000_000.0)
    if name == "gemma3":  # 5 sliding-window layers, then a global one; a window shorter than a row
        kw.update(num_hidden_layers=6, num_key_value_heads=1)
        return tf.Gemma3TextConfig(**kw, head_dim=32, query_pre_attn_scalar=32, sliding_window=8)
    if name == "gemma4":  # per-layer embeddings, shared key/values, wider global heads, double-wide MLP
        kw.update(num_hidden_layers=6, num_key_value_heads=1)
        return tf.Gemma4TextConfig(
            **kw, head_dim=16, global_head_dim=32, sliding_window=8,
            layer_types=["sliding_attention"] * 3 + ["full_attention", "sliding_attention", "full_attention"],
            vocab_size_per_layer_input=vocab_size, hidden_size_per_layer_input=8, num_kv_shared_layers=2,
            use_double_wide_mlp=True, final_logit_softcapping=30.0,
        )  # fmt: skip
    if name == "phi4-mini":  # partial rotary (3/4 of each head), tied embeddings, long-context rope
        half_rot = int(16 * 0.75) // 2
        rope = {"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
                "short_factor": [1.0 + 0.1 * i for i in range(half_rot)],
                "long_factor": [2.0 + 0.3 * i for i in range(half_rot)]}  # fmt: skip
        kw.update(max_position_embeddings=2048)
        return tf.Phi3Config(**kw, tie_word_embeddings=True, rope_parameters=rope,
                             original_max_position_embeddings=256, pad_token_id=0)  # fmt: skip
    raise ValueError(name)


def family_tokenizer(family: Family):
    """The family's tokenizer: the real vocabulary, renamed ids, its eos and its real chat template."""
    from transformers import AutoTokenizer

    from localft.plan.catalog import embedded_model_dir
    from tests.real_material import hf_tokenizer_dir, template

    source = hf_tokenizer_dir(family.tokenizer) if family.tokenizer else embedded_model_dir()
    tok = AutoTokenizer.from_pretrained(source)
    if family.renamed:
        tok = _rename_tokens(tok, family.renamed)
    tok.eos_token = family.eos
    if family.template:
        tok.chat_template = template(family.template)
    return tok


def _rename_tokens(tok, renamed: dict[int, str]):
    """A copy of `tok` where each id in `renamed` carries the new text (as a special token)."""
    import tempfile

    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        path = Path(tmp) / "tokenizer.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        for entry in data["added_tokens"]:
            if entry["id"] in renamed:
                old, entry["content"], entry["special"] = entry["content"], renamed[entry["id"]], True
                if vocab.get(old) == entry["id"]:
                    del vocab[old]
                    vocab[entry["content"]] = entry["id"]
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        config_path = Path(tmp) / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for key, entry in config.get("added_tokens_decoder", {}).items():
            if int(key) in renamed:
                entry["content"] = renamed[int(key)]
        config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        return AutoTokenizer.from_pretrained(tmp)


def build_family_model(out: Path, name: str, seed: int = 0) -> Path:
    """Write a tiny random model of catalog family `name` with its real tokenizer to `out`."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.real_material import vocab_size

    family = FAMILIES[name]
    tok = family_tokenizer(family)
    torch.manual_seed(seed)
    config = family_config(name, vocab_size(family.tokenizer) if family.tokenizer else len(tok))
    config.bos_token_id = tok.bos_token_id
    config.eos_token_id = tok.convert_tokens_to_ids(family.eos)
    config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else config.eos_token_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _perturb_norms(model)
    if name == "gemma4":
        _temper_gemma4_scores(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def _perturb_norms(model) -> None:
    """Random models start with every norm weight equal (1, or 0 where the norm adds 1), which
    hides a converter that drops or shifts them; make them all different."""
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=generator))


def family_model_dir(name: str) -> Path:
    """The tiny model of family `name`, built once per machine into the test cache (versioned by
    this file and the library versions that build it)."""
    import hashlib

    import transformers
    from filelock import FileLock

    from tests.conftest import CACHE_ROOT
    from tests.real_material import llama_cpp_version

    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]
    root = CACHE_ROOT / f"families-{source}-tf{transformers.__version__}-lcp{llama_cpp_version()}"
    target = root / name
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").is_file():
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            build_family_model(tmp, name)
            tmp.rename(target)
    return target


def _temper_gemma4_scores(model) -> None:
    """Gemma 4 attends without a 1/sqrt(head_dim) factor: its trained q/k norm scales keep scores
    moderate. Random scales of 1 make every score ~sqrt(head_dim) and the tiny model chaotic (fp16
    rounding of its weights alone moves its logits by percents), so start them at head_dim^-1/4."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("q_norm.weight", "k_norm.weight")):
                p.mul_(p.shape[0] ** -0.25)
