"""HF safetensors folder -> GGUF, in-process on gguf-py, one tensor at a time.

Writes F32, F16, BF16 and Q8_0 directly; the K-quants start from the F16 file (see quantize.py).
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

import localft
from localft.disk import require_free_space
from localft.errors import ExportError
from localft.export.archs import ArchDescription
from localft.export.families import describe
from localft.export.token_strip import llama_cpp_name
from localft.export.vocab import load_vocab
from localft.export.weights import SafetensorsFolder

Q = gguf.GGMLQuantizationType
# Types gguf-py writes itself: quant name -> (tensor type, file type).
DIRECT_TYPES: dict[str, tuple[Q, gguf.LlamaFileType]] = {
    "F32": (Q.F32, gguf.LlamaFileType.ALL_F32),
    "F16": (Q.F16, gguf.LlamaFileType.MOSTLY_F16),
    "BF16": (Q.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "Q8_0": (Q.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}

Progress = Callable[[int, int, str], None]  # (done, total, tensor name)
# Marks files made here (llama.cpp's quantizer copies it); chat loads other GGUFs only on request.
LOCALFT_KEY = "localft.version"


class FastGGUFWriter(gguf.GGUFWriter):
    """gguf-py's writer, packing long metadata arrays (the vocabulary: tokens, types, merges) in
    bulk; its item-by-item packing takes longer than writing the weights of a small model."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None) -> bytes:
        V = gguf.GGUFValueType
        if (
            vtype != V.ARRAY
            or sub_type is not None
            or not isinstance(val, list)
            or len(val) < 256
            or self.endianess != gguf.GGUFEndian.LITTLE
        ):
            return super()._pack_val(val, vtype, add_vtype, sub_type)
        head = struct.pack("<I", V.ARRAY) if add_vtype else b""
        if all(isinstance(v, (str, bytes)) for v in val):
            items = [v.encode("utf-8") if isinstance(v, str) else v for v in val]
            parts = [head, struct.pack("<IQ", V.STRING, len(items))]
            for item in items:
                parts += (struct.pack("<Q", len(item)), item)
            return b"".join(parts)
        if all(type(v) is int for v in val):
            return head + struct.pack("<IQ", V.INT32, len(val)) + np.asarray(val, dtype="<i4").tobytes()
        if all(type(v) is float for v in val):
            return head + struct.pack("<IQ", V.FLOAT32, len(val)) + np.asarray(val, dtype="<f4").tobytes()
        return super()._pack_val(val, vtype, add_vtype, sub_type)


@dataclass(frozen=True)
class PlannedTensor:
    hf_name: str | None  # None for tensors the converter makes (rope factors)
    gguf_name: str
    shape: tuple[int, ...]
    qtype: Q
    nbytes: int
    data: np.ndarray | None = None  # only for made tensors


@dataclass(frozen=True)
class ConvertResult:
    path: Path
    quant: str
    bytes: int
    tensors: int
    seconds: float


def read_config(model_dir: Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ExportError(f"{model_dir} is not an HF model folder (no config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ExportError(f"{path} is not valid JSON") from None
    return config.get("text_config", config) | {"architectures": config.get("architectures", [])}


# Tensors llama.cpp reads in F32 only, whatever the file type (as its own converter keeps them).
F32_ONLY = ("ssm_conv1d.weight",)


def tensor_type(gguf_name: str, shape: tuple[int, ...], want: Q) -> Q:
    """1-D tensors (norms, biases), norms, recurrent convolutions and tensors without a `.weight`
    name stay F32; rows that do not fill whole blocks fall back to F16."""
    if len(shape) <= 1 or want == Q.F32 or not gguf_name.endswith(".weight"):
        return Q.F32
    if gguf_name.endswith(("_norm.weight", *F32_ONLY)):
        return Q.F32
    block, _ = gguf.GGML_QUANT_SIZES[want]
    if shape[-1] % block:
        return Q.F16
    return want


def nbytes_of(shape: tuple[int, ...], qtype: Q) -> int:
    return int(np.prod(gguf.quant_shape_to_byte_shape(shape, qtype))) if len(shape) else 4


def plan_tensors(
    weights: SafetensorsFolder, desc: ArchDescription, config: dict, want: Q
) -> list[PlannedTensor]:
    tmap = gguf.get_tensor_name_map(desc.arch, config["num_hidden_layers"])
    tied = desc.always_tied or config.get("tie_word_embeddings", False) or "lm_head.weight" not in weights
    plan = []
    for name in weights.names():
        if any(s in name for s in desc.skip) or (name == "lm_head.weight" and tied):
            continue
        if (source := desc.rename(name)) is None:
            continue
        new = tmap.get_name(source, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ExportError(
                f"tensor {name} has no GGUF name for {desc.gguf_name}; this model variant is not supported"
            )
        shape = desc.fix_shape(name, weights.shape(name))
        qtype = tensor_type(new, shape, want)
        plan.append(PlannedTensor(name, new, shape, qtype, nbytes_of(shape, qtype)))
    for new, data in desc.extra_tensors(config):
        plan.append(PlannedTensor(None, new, data.shape, Q.F32, data.nbytes, data))
    return plan


def encode(data: np.ndarray, qtype: Q) -> np.ndarray:
    if qtype == Q.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if qtype == Q.F16:
        return data.astype(np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


def check_disk(target: Path, need: int) -> None:
    """Refuse to start writing `target` (about `need` bytes) where it cannot fit."""
    require_free_space(target.parent, need, target.name)


def finish_gguf(writer: gguf.GGUFWriter, tmp: Path, out_path: Path) -> None:
    """Flush and fsync the temporary file, close it, then move it under its final name, so a
    crash never leaves a partial GGUF where a complete one is expected."""
    writer.flush()
    assert writer.fout is not None
    for f in writer.fout:
        os.fsync(f.fileno())
    writer.close()
    os.replace(tmp, out_path)


def convert_folder(
    model_dir: Path,
    out_path: Path,
    quant: str = "F16",
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> ConvertResult:
    """Convert the HF folder to a GGUF of a directly written type. The file appears under its final
    name only when complete; on any error no partial file is left there."""
    if quant not in DIRECT_TYPES:
        raise ExportError(f"{quant} is not written directly; choose one of {', '.join(DIRECT_TYPES)}")
    start = time.perf_counter()
    model_dir, out_path = Path(model_dir), Path(out_path)
    config = read_config(model_dir)
    desc = describe(config)
    desc.check(config)
    weights = SafetensorsFolder(model_dir)
    vocab = load_vocab(model_dir, config["vocab_size"])
    want, file_type = DIRECT_TYPES[quant]
    plan = plan_tensors(weights, desc, config, want)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    check_disk(out_path, sum(t.nbytes for t in plan) + 32 * 2**20)

    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    writer = FastGGUFWriter(tmp, desc.gguf_name)
    try:
        writer.add_type(gguf.GGUFType.MODEL)
        # The name also tells llama.cpp whether to strip whitespace after special tokens.
        writer.add_name(llama_cpp_name(name or model_dir.name, vocab.strips_after_specials))
        desc.write_params(writer, config)
        writer.add_file_type(file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_string(LOCALFT_KEY, localft.__version__)
        vocab.write(writer)
        for t in plan:
            writer.add_tensor_info(t.gguf_name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for i, t in enumerate(plan):
            data = (
                t.data if t.hf_name is None else desc.fix_tensor(t.hf_name, weights.read(t.hf_name), config)
            )
            writer.write_tensor_data(encode(data, t.qtype))
            if progress:
                progress(i + 1, len(plan), t.gguf_name)
        finish_gguf(writer, tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    size = out_path.stat().st_size
    return ConvertResult(out_path, quant, size, len(plan), time.perf_counter() - start)
