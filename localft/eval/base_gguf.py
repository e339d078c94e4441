"""The base model as a GGUF of the same type as the tuned one, made once and cached, so the
evaluation compares two files the same way."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from localft.paths import cache_dir, file_lock
from localft.plan.catalog import resolve_model


def base_gguf_path(model: str, quant: str, log_path: Path | None = None) -> Path:
    """$LOCALFT_HOME/cache/base-gguf/<model>-<hash>-<QUANT>.gguf, converted on first use."""
    from localft.export.gguf import DIRECT_TYPES, convert_folder
    from localft.export.quantize import quantize_file

    folder = resolve_model(model).resolve()
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:8]  # two local folders may share a name
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.name).strip("-") or "model"
    target = cache_dir() / "base-gguf" / f"{stem}-{digest}-{quant}.gguf"
    if target.is_file():
        return target
    with file_lock(target.with_suffix(".lock")):
        if target.is_file():  # another process made it while we waited
            return target
        if quant in DIRECT_TYPES:
            convert_folder(folder, target, quant, name=stem)
            return target
        f16 = target.with_name(f".{target.stem}-F16.gguf")
        try:
            convert_folder(folder, f16, "F16", name=stem)
            quantize_file(f16, target, quant, log_path=log_path)
        finally:
            f16.unlink(missing_ok=True)
    return target
