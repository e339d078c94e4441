"""A GGUF file as a base model: what its metadata says (architecture, size, quantization, chat
template), whether transformers can read and dequantize it, and the HF folder made from it once."""

from __future__ import annotations

import contextlib
import io
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from localft.errors import ModelError

# GGUF architectures transformers reads but which are no causal chat model to tune.
_NOT_CAUSAL = {"t5", "t5encoder", "umt5", "general", "tokenizer"}


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    architecture: str
    params: int
    quantization: str  # the file type llama.cpp wrote (Q4_K_M, Q8_0, F16), else the commonest tensor type
    tensor_types: tuple[str, ...]  # every tensor type in the file
    chat_template: str | None
    name: str | None = None  # general.name
    context_length: int | None = None

    @property
    def size(self) -> str:
        """The parameter count as people say it: 135M, 1.7B."""
        return f"{self.params / 1e9:.1f}B" if self.params >= 0.95e9 else f"{self.params / 1e6:.0f}M"


def read_gguf_info(path: Path) -> GgufInfo:
    """The metadata of a GGUF file, from its header alone (no vocabulary is read); a ModelError when
    the file is no GGUF."""
    import gguf

    from localft.plan.gguf_header import GgufHeaderError, read_gguf_header

    path = Path(path)
    try:
        header = read_gguf_header(path)
    except (OSError, GgufHeaderError) as exc:  # a truncated or foreign file
        raise ModelError(f"{path} is not a readable GGUF file ({type(exc).__name__}: {exc})") from None
    meta = header.metadata
    arch = _text(meta, "general.architecture") or "unknown"
    types = Counter(_type_name(gguf, t.type_id) for t in header.tensors)
    try:
        quant = gguf.LlamaFileType(meta.get("general.file_type")).name
        quant = quant.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        quant = None
    if quant is None or quant == "GUESSED":
        quant = types.most_common(1)[0][0] if types else "none"
    context = meta.get(f"{arch}.context_length")
    return GgufInfo(
        path=path,
        architecture=arch,
        params=sum(t.n_elements for t in header.tensors),
        quantization=quant,
        tensor_types=tuple(sorted(types)),
        chat_template=_text(meta, "tokenizer.chat_template"),
        name=_text(meta, "general.name"),
        context_length=context if isinstance(context, int) else None,
    )


def _text(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    return value if isinstance(value, str) else None


def _type_name(gguf, type_id: int) -> str:
    try:
        return gguf.GGMLQuantizationType(type_id).name
    except ValueError:  # a type newer than the installed gguf-py
        return f"type {type_id}"


def gguf_architectures() -> list[str]:
    """The GGUF architectures transformers reads: the keys of its GGUF config mapping, which is
    what modeling_gguf_pytorch_utils lists as supported, read without that module's import of torch
    (most of `localft models --local`'s time otherwise)."""
    try:
        from transformers.integrations.ggml import GGUF_CONFIG_MAPPING
    except ImportError:  # a transformers that moved it
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        return list(GGUF_SUPPORTED_ARCHITECTURES)
    return list(GGUF_CONFIG_MAPPING)


def _transformers_architecture(arch: str) -> str | None:
    """The architecture transformers reads this GGUF as (its own renames), or None."""
    supported = gguf_architectures()
    renamed = {
        "qwen2moe": "qwen2_moe",
        "qwen3moe": "qwen3_moe",
        "gpt-oss": "gpt_oss",
        "minimax-m2": "minimax_m2",
    }
    for name in (arch, renamed.get(arch, arch)):
        if name in supported and name not in _NOT_CAUSAL:
            return name
    return None


def _dequantizable(type_name: str) -> bool:
    """Whether gguf-py (what transformers dequantizes with) has a dequantizer for this tensor type:
    tried on one zero block, so the answer is the installed version's own."""
    import gguf
    import numpy as np

    if type_name not in gguf.GGMLQuantizationType.__members__:  # unknown to this gguf-py
        return False
    qtype = gguf.GGMLQuantizationType[type_name]
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    try:
        gguf.quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), qtype)
    except NotImplementedError:
        return False
    return True


def check_trainable(info: GgufInfo, label: str) -> None:
    """Refuse, in one line naming it, a GGUF whose architecture transformers cannot read or one
    holding a tensor type it cannot dequantize: checked before anything is written."""
    if _transformers_architecture(info.architecture) is None:
        raise ModelError(
            f"{label}: architecture {info.architecture!r} cannot be read from a GGUF by transformers "
            f"{_transformers_version()}, so localft cannot train on this file; pick another model"
        )
    bad = [t for t in info.tensor_types if not _dequantizable(t)]
    if bad:
        raise ModelError(
            f"{label}: quantization {', '.join(bad)} cannot be dequantized by gguf-py, so localft "
            f"cannot train on this file; use a Q8_0, Q4_K_M or F16 copy of the model"
        )
    if not info.chat_template:
        raise ModelError(f"{label}: the GGUF carries no chat template (tokenizer.chat_template)")


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def materialize_gguf(gguf: Path, out: Path, label: str | None = None) -> None:
    """The GGUF's weights dequantized to float32 and its tokenizer and chat template, saved as an
    HF safetensors folder in `out` (the training precision is the plan's, applied when loaded)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(
        f"preparing {label or gguf.name} for training (once; a minute per billion parameters)...",
        file=sys.stderr,
    )
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
    end_of_turn = _end_of_turn_id(tok)
    if end_of_turn is not None:  # generation ends a reply where the chat template ends a turn
        model.generation_config.eos_token_id = end_of_turn
    with contextlib.redirect_stderr(io.StringIO()):
        model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def _end_of_turn_id(tok) -> int | None:
    """The token that closes an assistant turn in the tokenizer's template (<|im_end|>, <|eot_id|>,
    <end_of_turn>, <|end|>), else None (the GGUF's end-of-sequence token then stands)."""
    template = getattr(tok, "chat_template", None) or ""
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        if marker in template and marker in tok.get_vocab():
            return tok.convert_tokens_to_ids(marker)
    return None
