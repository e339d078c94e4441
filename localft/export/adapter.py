"""A peft LoRA adapter alone as a GGUF adapter (llama.cpp's `--lora` format)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gguf
import numpy as np

import localft
from localft.errors import ExportError
from localft.export.families import describe
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
    mlx = "lora_parameters" in lora  # mlx-lm's layout: lora_a (in x r), lora_b (r x out), a scale
    if lora.get("use_dora") or lora.get("fine_tune_type") == "dora":
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
    a_mark, b_mark = (".lora_a", ".lora_b") if mlx else (".lora_A.", ".lora_B.")

    pairs: list[tuple[str, str, str]] = []  # (gguf base name, A name, B name)
    for name in weights.names():
        if a_mark not in name:
            if b_mark not in name:
                raise ExportError(
                    f"adapter tensor {name} is not a LoRA matrix (modules_to_save is not supported)"
                )
            continue
        new = tmap.get_name(_hf_base(name, mlx), try_suffixes=(".weight",))
        if new is None:
            raise ExportError(f"adapter tensor {name} targets {_hf_base(name, mlx)}, which has no GGUF name")
        pairs.append((new, name, name.replace(a_mark, b_mark)))
    if mlx:  # mlx-lm scales by `scale`; llama.cpp by alpha / rank
        rank = weights.shape(pairs[0][1])[1] if pairs else 1
        alpha = float(lora["lora_parameters"]["scale"]) * rank
    else:
        alpha = float(lora.get("lora_alpha", lora.get("r", 8)))

    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    check_disk(out_path, sum(4 * int(np.prod(weights.shape(n))) for n in weights.names()))
    writer = gguf.GGUFWriter(tmp, desc.gguf_name)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(LOCALFT_KEY, localft.__version__)
        for new, a, b in pairs:
            for suffix, src in ((".lora_a", a), (".lora_b", b)):
                shape = weights.shape(src)[::-1] if mlx else weights.shape(src)
                writer.add_tensor_info(new + suffix, shape, np.dtype(np.float32), 4 * int(np.prod(shape)))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _, a, b in pairs:
            # peft's layout (A: r x in, B: out x r) is llama.cpp's; mlx-lm's is its transpose.
            a_data, b_data = (
                (weights.read(a).T, weights.read(b).T) if mlx else (weights.read(a), weights.read(b))
            )
            writer.write_tensor_data(np.ascontiguousarray(a_data, dtype=np.float32))
            # The base's row fixes (llama's rotary permutation) apply to B's output rows.
            fixed = desc.fix_tensor(_hf_base(a, mlx), np.ascontiguousarray(b_data), config)
            writer.write_tensor_data(np.ascontiguousarray(fixed, dtype=np.float32))
        finish_gguf(writer, tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return out_path


def _hf_base(name: str, mlx: bool) -> str:
    """The base weight an adapter's A matrix belongs to, by its HF name."""
    if mlx:
        return name.removesuffix(".lora_a") + ".weight"
    return (
        name.removeprefix(_PEFT_PREFIX)
        .replace(".lora_A.weight", ".weight")
        .replace(".lora_A.default.weight", ".weight")
    )
