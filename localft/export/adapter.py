"""A peft LoRA adapter alone as a GGUF adapter (llama.cpp's `--lora` format)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gguf
import numpy as np

import localft
from localft.errors import ExportError
from localft.export.archs import describe
from localft.export.gguf import LOCALFT_KEY, check_disk, finish_gguf, read_config
from localft.export.weights import SafetensorsFolder

_PEFT_PREFIX = "base_model.model."


def convert_adapter(adapter_dir: Path, base_dir: Path, out_path: Path) -> Path:
    """Write the adapter's A/B matrices (F32) under llama.cpp names, with alpha; rank comes from
    the shapes. The base folder supplies the architecture (and the rotary permutation for q/k)."""
    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.is_file():
        raise ExportError(f"{adapter_dir} is not a LoRA adapter (no adapter_config.json)")
    lora = json.loads(cfg_path.read_text(encoding="utf-8"))
    if lora.get("use_dora"):
        raise ExportError(
            "a DoRA adapter cannot run in llama.cpp as a separate adapter; export the merged model"
        )
    if lora.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"adapter type {lora.get('peft_type')} is not LoRA")
    config = read_config(base_dir)
    desc = describe(config)
    if not desc.adapter_export:
        raise ExportError(
            f"a LoRA adapter for {desc.gguf_name} cannot be written for llama.cpp on its own; export the merged model"
        )
    tmap = gguf.get_tensor_name_map(desc.arch, config["num_hidden_layers"])
    weights = SafetensorsFolder(adapter_dir)

    pairs: list[tuple[str, str, str]] = []  # (gguf base name, A name, B name)
    for name in weights.names():
        if ".lora_A." not in name:
            if ".lora_B." not in name:
                raise ExportError(
                    f"adapter tensor {name} is not a LoRA matrix (modules_to_save is not supported)"
                )
            continue
        base = (
            name.removeprefix(_PEFT_PREFIX)
            .replace(".lora_A.weight", ".weight")
            .replace(".lora_A.default.weight", ".weight")
        )
        new = tmap.get_name(base, try_suffixes=(".weight",))
        if new is None:
            raise ExportError(f"adapter tensor {name} targets {base}, which has no GGUF name")
        pairs.append((new, name, name.replace(".lora_A.", ".lora_B.")))

    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    check_disk(out_path, sum(4 * int(np.prod(weights.shape(n))) for n in weights.names()))
    writer = gguf.GGUFWriter(tmp, desc.gguf_name)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(lora.get("lora_alpha", lora.get("r", 8))))
        writer.add_string(LOCALFT_KEY, localft.__version__)
        for new, a, b in pairs:
            for suffix, src in ((".lora_a", a), (".lora_b", b)):
                writer.add_tensor_info(
                    new + suffix,
                    weights.shape(src),
                    np.dtype(np.float32),
                    4 * int(np.prod(weights.shape(src))),
                )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _, a, b in pairs:
            hf_base = a.removeprefix(_PEFT_PREFIX).split(".lora_A.")[0] + ".weight"
            writer.write_tensor_data(weights.read(a))
            # The base's row fixes (llama's rotary permutation) apply to B's output rows.
            writer.write_tensor_data(np.ascontiguousarray(desc.fix_tensor(hf_base, weights.read(b), config)))
        finish_gguf(writer, tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return out_path
