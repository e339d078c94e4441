"""The language model of a vision-language checkpoint as a text-only HF folder.

Qwen3.5, Gemma 3 (4B and up) and Gemma 4 ship as vision-language checkpoints. localft trains and
exports text, so it takes their language model out once (tensors copied byte for byte, config and
tokenizer beside them) and every backend, merge and the GGUF converter see a plain text model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from localft.errors import ModelError

# The vision-language architecture -> the text-only one that holds the same language model.
TEXT_ARCHITECTURES = {
    "Qwen3_5ForConditionalGeneration": "Qwen3_5ForCausalLM",
    "Gemma3ForConditionalGeneration": "Gemma3ForCausalLM",
    "Gemma4ForConditionalGeneration": "Gemma4ForCausalLM",
}
# Where the language model's tensors live in those checkpoints, and their text-only names.
PREFIXES = (
    ("model.language_model.", "model."),
    ("language_model.model.", "model."),
    ("language_model.lm_head.", "lm_head."),
    ("lm_head.", "lm_head."),
)
SIDE_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
    "generation_config.json",
)  # fmt: skip
MAX_SHARD_BYTES = 4 * 1024**3


def vision_language_architecture(config: dict) -> str | None:
    for name in config.get("architectures") or []:
        if name in TEXT_ARCHITECTURES:
            return name
    return None


def text_config(config: dict, architecture: str, has_lm_head: bool) -> dict:
    """The text model's config.json: the nested text config, with what the wrapper kept outside it.
    The output layer is tied as the checkpoint behaves in transformers: the wrapper's setting
    decides, and a stored lm_head is used whatever it says."""
    text = dict(config.get("text_config") or {})
    if not text:
        raise ModelError(f"{architecture} config has no text_config; the checkpoint looks incomplete")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype", "dtype"):
        if key not in text and key in config:
            text[key] = config[key]
    tied = config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))
    text["tie_word_embeddings"] = bool(tied) and not has_lm_head
    text["architectures"] = [TEXT_ARCHITECTURES[architecture]]
    return text


def text_name(name: str) -> str | None:
    for prefix, replacement in PREFIXES:
        if name.startswith(prefix):
            return replacement + name[len(prefix) :]
    return None  # vision tower, audio tower, projectors, multi-token-prediction heads


def extract_text_model(source: Path, out: Path) -> None:
    """Write the language model of the checkpoint in `source` as a text-only HF folder to `out`."""
    from localft.atomic import atomic_dir
    from localft.export.weights import SafetensorsFolder, copy_tensors

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    architecture = vision_language_architecture(config)
    if architecture is None:
        raise ModelError(f"{source} is not a vision-language checkpoint localft knows")
    weights = SafetensorsFolder(source)
    renames = {name: new for name in weights.names() if (new := text_name(name))}
    if not any(new.startswith("model.layers.") for new in renames.values()):
        raise ModelError(f"{source} holds no language-model tensors under the names {architecture} uses")
    shards: list[dict[str, str]] = [{}]
    size = 0
    for old, new in renames.items():
        entry = weights.entries[old]
        if shards[-1] and size + entry.end - entry.start > MAX_SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][old] = new
        size += entry.end - entry.start
    with atomic_dir(out) as tmp:
        names = ["model.safetensors"] if len(shards) == 1 else [
            f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)
        ]  # fmt: skip
        for name, shard in zip(names, shards, strict=True):
            copy_tensors(weights, shard, tmp / name)
        if len(shards) > 1:
            index = {
                "weight_map": {
                    new: name for name, shard in zip(names, shards, strict=True) for new in shard.values()
                }
            }
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
        has_lm_head = "lm_head.weight" in renames.values()
        text = json.dumps(text_config(config, architecture, has_lm_head), indent=2, sort_keys=True)
        (tmp / "config.json").write_text(text, encoding="utf-8")
        for side in SIDE_FILES:
            if (source / side).is_file():
                shutil.copy(source / side, tmp / side)


def text_model_dir(folder: Path) -> Path:
    """`folder` itself for a text model; for a vision-language checkpoint, its language model as
    a text-only folder in localft's cache (made once, on first use)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return folder  # loading reports what is wrong with it
    if vision_language_architecture(config) is None:
        return folder
    from localft.paths import cache_dir, file_lock

    stamp = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.glob("*.safetensors"))
    key = hashlib.sha256(f"{folder.resolve()}{stamp}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / "text-only" / f"{folder.name}-{key}"
    if (target / "config.json").is_file():
        return target
    with file_lock(target.with_name(target.name + ".lock")):
        if not (target / "config.json").is_file():
            print(f"taking the language model out of {folder.name} (once)...", file=sys.stderr)
            extract_text_model(folder, target)
    return target
