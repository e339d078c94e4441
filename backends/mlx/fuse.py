"""Fuse a run's MLX adapter into a full-precision copy of its base and write an HF folder
(safetensors with HF tensor names, config, tokenizer, chat template) for transformers and GGUF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from localft.atomic import atomic_dir
from localft.backends.mlx.modeling import (
    ADAPTER_WEIGHTS,
    add_adapters,
    load_adapter_weights,
    load_base,
    read_adapter_config,
)
from localft.errors import ExportError
from localft.run.folder import RunDir

TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
    "generation_config.json",
)  # fmt: skip
MAX_SHARD_GB = 4
DTYPE_NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


def load_fused(base_dir: Path, adapter_dir: Path):
    """The base in full precision with the adapter folded into its weights: (model, config, names
    of the fused linear modules). A base trained in 4 bits on the fly is reloaded from its
    full-precision files; a base that is stored quantized is dequantized before the adapter is added."""
    from mlx_lm.utils import dequantize_model

    if not (Path(adapter_dir) / ADAPTER_WEIGHTS).is_file():
        raise ExportError(f"no adapter in {adapter_dir}; train the run first (`localft train`)")
    model, config = load_base(base_dir, dtype=None, quantize=False)
    if "quantization" in config or "quantization_config" in config:
        model = dequantize_model(model)
        config = {k: v for k, v in config.items() if k not in ("quantization", "quantization_config")}
    adapter = read_adapter_config(adapter_dir)
    if adapter["fine_tune_type"] == "full":  # every weight was trained: each one replaces the base's
        load_adapter_weights(model, adapter_dir)
        mx.eval(model.parameters())
        return model, config, sorted({k.rsplit(".", 1)[0] for k, _ in tree_flatten(model.parameters())})
    add_adapters(model, adapter)
    load_adapter_weights(model, adapter_dir)
    fused = [(name, m.fuse(dequantize=True)) for name, m in model.named_modules() if hasattr(m, "fuse")]
    if fused:
        model.update_modules(tree_unflatten(fused))
    mx.eval(model.parameters())
    return model, config, [name for name, _ in fused]


def hf_name(mlx_name: str, hf_names: set[str]) -> str:
    """The HF tensor an mlx-lm parameter stands for: mlx-lm may wrap the text model in another
    module (Qwen3.5's `language_model.`), so the longest dotted suffix both share decides."""
    parts = mlx_name.split(".")
    for i in range(len(parts)):
        suffix = ".".join(parts[i:])
        found = [h for h in hf_names if h == suffix or h.endswith("." + suffix)]
        if len(found) == 1:
            return found[0]
    raise ExportError(
        f"cannot tell which tensor of the base model {mlx_name} is; fusing this model is not supported"
    )


def base_weights_with_fused(model, base_dir: Path, fused: list[str]) -> dict | None:
    """The base's own tensors, under their HF names and dtypes, with each adapted linear's weight
    replaced by the fused one; None for a base stored in MLX's quantized layout. Starting from the
    base's files keeps every other tensor exactly as it was (mlx-lm reshapes or shifts some on
    load: Qwen3.5's norms and convolutions)."""
    files = sorted(Path(base_dir).glob("*.safetensors"))
    config = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    if not files or "quantization" in config or "quantization_config" in config:
        return None
    weights: dict = {}
    for f in files:
        weights.update(mx.load(str(f)))
    names = set(weights)
    params = dict(tree_flatten(model.parameters()))
    for module in fused:
        for leaf in ("weight", "bias"):
            key = f"{module}.{leaf}"
            if key in params:
                target = hf_name(key, names)
                weights[target] = params[key].astype(weights[target].dtype)
    return weights


def write_hf_folder(model, config: dict, base_dir: Path, out: Path, fused: list[str] | None = None) -> Path:
    """Weights under their HF names, the base's config and tokenizer files, written atomically."""
    from mlx_lm.utils import make_shards

    weights = base_weights_with_fused(model, base_dir, fused or [])
    if weights is None:  # an MLX-format base: write mlx-lm's own tensors and config
        weights = dict(tree_flatten(model.parameters()))
        dtypes = {v.dtype for v in weights.values()}
        config = dict(config)
        if len(dtypes) == 1 and (dtype := DTYPE_NAMES.get(dtypes.pop())):
            config["torch_dtype"] = dtype
        config_text = json.dumps(config, indent=2, sort_keys=True)
    else:
        config_text = (Path(base_dir) / "config.json").read_text(encoding="utf-8")
    shards = make_shards(weights, max_file_size_gb=MAX_SHARD_GB)
    with atomic_dir(out) as tmp:
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            name = (
                "model.safetensors" if len(shards) == 1 else f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            )
            mx.save_safetensors(str(tmp / name), shard, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
        if len(shards) > 1:
            index = {
                "metadata": {"total_size": sum(v.nbytes for v in weights.values())},
                "weight_map": weight_map,
            }
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
        (tmp / "config.json").write_text(config_text, encoding="utf-8")
        for name in TOKENIZER_FILES:
            if (Path(base_dir) / name).is_file():
                shutil.copy(Path(base_dir) / name, tmp / name)
        _ensure_chat_template(tmp)
    return out


def _ensure_chat_template(folder: Path) -> None:
    """Older folders keep the template inside tokenizer_config.json; write it out as a file too."""
    if (folder / "chat_template.jinja").is_file():
        return
    try:
        template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get(
            "chat_template"
        )
    except (FileNotFoundError, ValueError):
        return
    if isinstance(template, str):
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")


def fuse_run(run: RunDir, out: Path) -> Path:
    from localft.plan.catalog import resolve_model

    spec = run.read_spec()
    base_dir = resolve_model(spec.model)
    model, config, fused = load_fused(base_dir, run.adapter_dir)
    return write_hf_folder(model, config, base_dir, Path(out), fused)
