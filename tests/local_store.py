"""An Ollama store and an LM Studio models folder holding real GGUF files, laid out as those apps
lay them out (Ollama: content-addressed blobs named by their sha256, a manifest per name:tag)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

EXPORT = Path(__file__).resolve().parent.parent / "examples" / "linkedin-export.zip"
# A short run that moves the model well away from its base (a large learning rate).
SHORT_RUN = ("--steps", "4", "--set", "max_seq_len=128", "--set", "learning_rate=0.02",
             "--set", "save_every=4", "--set", "eval_every=4")  # fmt: skip

CHATML_GO = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _blob(root: Path, data: bytes | None = None, path: Path | None = None) -> dict:
    """Store bytes (or a file) as Ollama does: blobs/sha256-<hex of the content>."""
    digest = hashlib.sha256()
    if path is not None:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    else:
        digest.update(data)
    name = f"sha256-{digest.hexdigest()}"
    target = root / "blobs" / name
    if not target.exists():
        if path is not None:
            _link(path, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    size = target.stat().st_size
    return {"digest": f"sha256:{digest.hexdigest()}", "size": size}


def add_ollama_model(root: Path, gguf: Path, name: str, *, stops=("<|im_start|>", "<|im_end|>")) -> None:
    """`ollama pull name` as it lands on disk: the GGUF, template, params and config blobs, and
    manifests/<host>/<namespace>/<model>/<tag>."""
    from localft.plan.local_models import parse_ollama_name

    host, namespace, model, tag = parse_ollama_name(name)
    layers = [{"mediaType": "application/vnd.ollama.image.model", **_blob(root, path=gguf)}]
    layers.append({"mediaType": "application/vnd.ollama.image.template", **_blob(root, CHATML_GO.encode())})
    params = json.dumps({"stop": list(stops), "temperature": 0.2}).encode()
    layers.append({"mediaType": "application/vnd.ollama.image.params", **_blob(root, params)})
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "file_type": "Q4_1"}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **_blob(root, config)},
        "layers": layers,
    }
    path = root / "manifests" / host / namespace / model / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def add_lmstudio_model(models: Path, gguf: Path, publisher: str, model: str) -> Path:
    target = models / publisher / model / gguf.name
    _link(gguf, target)
    return target


def train_short_run(model_id: str):
    """`localft train` of the LinkedIn example on `model_id` for 4 steps; the run it made."""
    from tests.command_support import localft, only_run

    trained = localft("train", EXPORT, "--model", model_id, *SHORT_RUN, timeout=900)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    return only_run()


def embedded_as(quant: str, folder: Path) -> Path:
    """The embedded model (dequantized once from its Q4_1 file) written back as a `quant` GGUF by
    localft's own exporter: a user's F16 or Q8_0 download of the same model."""
    from localft.config import ExportSpec
    from localft.export.pipeline import export_folder
    from localft.plan.catalog import resolve_model

    spec = ExportSpec(quants=[quant], verify=False, ollama=False, lmstudio=False, name=f"smollm2-{quant}")
    return Path(export_folder(resolve_model("ollama:smollm2:135m"), folder, spec).files[0].path)
