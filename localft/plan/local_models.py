"""The GGUF models already on this machine in Ollama's store and LM Studio's models folder, their ids
(`ollama:qwen3:1.7b`, `lmstudio:publisher/model`) and the HF folder training reads from each.

Ollama (types/model/name.go, server/manifest.go): `$OLLAMA_MODELS` or ~/.ollama/models holds
`manifests/<host>/<namespace>/<model>/<tag>`, JSON whose layers name blobs by digest; the layer with
mediaType application/vnd.ollama.image.model is the GGUF at `blobs/sha256-<hex>`, beside template,
params (JSON: stop, temperature...) and system layers. A name's host defaults to registry.ollama.ai,
its namespace to library, its tag to latest. LM Studio: `<models>/<publisher>/<model>/*.gguf`, the
models folder being settings.json's `downloadsFolder` (~/.lmstudio, older ~/.cache/lm-studio), else
~/.lmstudio/models, else ~/.cache/lm-studio/models.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from localft.errors import ModelError
from localft.plan.gguf_base import GgufInfo, read_gguf_info

OLLAMA, LMSTUDIO = "ollama", "lmstudio"
PREFIXES = (f"{OLLAMA}:", f"{LMSTUDIO}:")
DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
MODEL_LAYER = "application/vnd.ollama.image.model"
PARAMS_LAYER = "application/vnd.ollama.image.params"
SYSTEM_LAYER = "application/vnd.ollama.image.system"
# Files in an LM Studio model folder that are not a language model: vision projectors.
_NOT_A_MODEL = re.compile(r"^mmproj|[-.]mmproj", re.IGNORECASE)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


@dataclass(frozen=True)
class LocalModel:
    id: str  # what train --model takes
    app: str  # ollama / lmstudio
    name: str  # what the app calls it: qwen3:1.7b, publisher/model
    gguf: Path
    info: GgufInfo
    stops: tuple[str, ...] = ()  # Ollama's params layer
    system: str | None = None  # Ollama's system layer
    problems: list[str] = field(default_factory=list)


def is_local_id(name: str) -> bool:
    return name.startswith(PREFIXES)


def ollama_root() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models").expanduser()


def lmstudio_roots() -> list[Path]:
    """LM Studio's models folders: the one each settings file names, else the default ones."""
    found: list[Path] = []
    for home in (Path.home() / ".lmstudio", Path.home() / ".cache" / "lm-studio"):
        try:
            named = json.loads((home / "settings.json").read_text(encoding="utf-8")).get("downloadsFolder")
        except (OSError, ValueError, AttributeError):
            named = None
        for folder in ([Path(named).expanduser()] if isinstance(named, str) and named else []) + [
            home / "models"
        ]:
            if folder.is_dir() and folder not in found:
                found.append(folder)
    return found


def parse_ollama_name(name: str) -> tuple[str, str, str, str]:
    """(host, namespace, model, tag) of an Ollama name, with its defaults filled in."""
    base, _, tag = name.partition(":") if "/" not in name.partition(":")[2] else (name, "", "")
    parts = [p for p in base.split("/") if p]
    if not parts or len(parts) > 3 or any(p in (".", "..") for p in parts) or "/" in tag:
        raise ModelError(f"{name!r} is not an Ollama model name (model, model:tag or namespace/model:tag)")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace = parts[0], parts[1]
    elif len(parts) == 2:
        namespace = parts[0]
    return host, namespace, parts[-1], tag or DEFAULT_TAG


def _ollama_short(host: str, namespace: str, model: str, tag: str) -> str:
    """The name as `ollama list` shows it: the default host and namespace left out."""
    prefix = "" if host == DEFAULT_HOST else f"{host}/"
    prefix += "" if host == DEFAULT_HOST and namespace == DEFAULT_NAMESPACE else f"{namespace}/"
    return f"{prefix}{model}:{tag}"


def _blob(root: Path, digest: str) -> Path:
    return root / "blobs" / digest.replace(":", "-")


def _ollama_model(root: Path, manifest: Path, name: str) -> LocalModel | None:
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers") or []
    except (OSError, ValueError, AttributeError):
        return None
    by_type = {layer.get("mediaType"): layer.get("digest", "") for layer in layers if isinstance(layer, dict)}
    if MODEL_LAYER not in by_type or not _blob(root, by_type[MODEL_LAYER]).is_file():
        return None  # a safetensors import or a half-pulled model: nothing localft can read
    stops: tuple[str, ...] = ()
    system = None
    try:
        if PARAMS_LAYER in by_type:
            params = json.loads(_blob(root, by_type[PARAMS_LAYER]).read_text(encoding="utf-8"))
            stops = tuple(s for s in params.get("stop", []) if isinstance(s, str))
        if SYSTEM_LAYER in by_type:
            system = _blob(root, by_type[SYSTEM_LAYER]).read_text(encoding="utf-8")
    except (OSError, ValueError, AttributeError):
        pass  # the model layer is what training needs; a damaged params layer only loses its stops
    gguf = _blob(root, by_type[MODEL_LAYER])
    return LocalModel(f"{OLLAMA}:{name}", OLLAMA, name, gguf, read_gguf_info(gguf), stops, system)


def ollama_models() -> list[LocalModel]:
    root = ollama_root()
    found = []
    for manifest in sorted((root / "manifests").glob("*/*/*/*")):
        if not manifest.is_file():
            continue
        host, namespace, model, tag = manifest.relative_to(root / "manifests").parts
        try:
            local = _ollama_model(root, manifest, _ollama_short(host, namespace, model, tag))
        except ModelError:
            continue
        if local is not None:
            found.append(local)
    return found


def _lmstudio_files(folder: Path) -> list[Path]:
    """The model GGUFs of one LM Studio model folder: no vision projector, a split file by its first part."""
    files = []
    for p in sorted(folder.glob("*.gguf")):
        shard = _SHARD.search(p.name)
        if p.is_file() and not _NOT_A_MODEL.search(p.name) and (shard is None or shard.group(1) == "00001"):
            files.append(p)
    return files


def lmstudio_models() -> list[LocalModel]:
    found = []
    for root in lmstudio_roots():
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            files = _lmstudio_files(folder)
            for gguf in files:
                name = f"{folder.parent.name}/{folder.name}" + (f"/{gguf.name}" if len(files) > 1 else "")
                try:
                    found.append(LocalModel(f"{LMSTUDIO}:{name}", LMSTUDIO, name, gguf, read_gguf_info(gguf)))
                except ModelError:
                    continue
    return found


def local_models() -> list[LocalModel]:
    """Every GGUF model in Ollama's store and LM Studio's folders (unreadable files left out)."""
    return ollama_models() + lmstudio_models()


def find_local_model(model_id: str) -> LocalModel:
    """The local model an `ollama:` / `lmstudio:` id names; a ModelError naming what is there when none."""
    app, _, name = model_id.partition(":")
    if app == OLLAMA:
        host, namespace, model, tag = parse_ollama_name(name)
        root = ollama_root()
        manifest = root / "manifests" / host / namespace / model / tag
        found = (
            _ollama_model(root, manifest, _ollama_short(host, namespace, model, tag))
            if manifest.is_file()
            else None
        )
        where = f"Ollama's store {root}"
    else:
        found = next((m for m in lmstudio_models() if m.name == name or m.name.startswith(f"{name}/")), None)
        if (
            found is not None
            and found.name != name
            and sum(m.name.startswith(f"{name}/") for m in lmstudio_models()) > 1
        ):
            files = ", ".join(
                m.name.rsplit("/", 1)[1] for m in lmstudio_models() if m.name.startswith(f"{name}/")
            )
            raise ModelError(
                f"{model_id} holds several GGUF files ({files}); add the file: {model_id}/FILE.gguf"
            )
        where = (
            "LM Studio's models folder (" + ", ".join(map(str, lmstudio_roots())) + ")"
            if lmstudio_roots()
            else "LM Studio's models folder (none found)"
        )
    if found is None:
        known = [m.id for m in local_models() if m.app == app]
        raise ModelError(
            f"{model_id} is not in {where}; "
            + (f"found: {', '.join(known)}" if known else "it holds no GGUF model")
        )
    if _SHARD.search(found.gguf.name):
        raise ModelError(
            f"{model_id} is split into several GGUF files, which transformers cannot load; merge it first"
        )
    return found


def local_model_dir(model_id: str) -> Path:
    """The HF folder training, merge and export read for a local model: its GGUF dequantized once
    into the cache (keyed by the file's content: a copy of it is the same entry). Refused before
    anything is written when transformers cannot read or dequantize the file."""
    from localft.atomic import atomic_dir
    from localft.paths import file_lock
    from localft.plan.gguf_base import check_trainable, materialize_gguf

    model = find_local_model(model_id)
    target = _cached_dir(model)
    if (target / "config.json").is_file():
        return target
    check_trainable(model.info, model_id)
    with file_lock(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():
            return target
        with atomic_dir(target) as tmp:
            materialize_gguf(model.gguf, tmp, model_id)
    return target


def _cached_dir(model: LocalModel) -> Path:
    from localft.paths import cache_dir

    return (
        cache_dir()
        / "models"
        / "local"
        / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', model.name)}-{file_key(model.gguf)}"
    )


def local_model_prepared(model_id: str) -> bool:
    """Whether the local model's HF folder is in the cache already (the dashboard's form never
    dequantizes a model just to preview a plan)."""
    try:
        return (_cached_dir(find_local_model(model_id)) / "config.json").is_file()
    except (ModelError, OSError):
        return False


def file_key(path: Path) -> str:
    """A short identity of a GGUF file: its size and its first and last MiB (the header names every
    tensor; the last MiB holds the last tensors' data), read in milliseconds for any size."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read())
    return digest.hexdigest()[:16]
