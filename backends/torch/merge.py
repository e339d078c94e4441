"""Merge a run's LoRA adapter into a full-precision copy of its base model and save an HF folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from localft.atomic import atomic_dir
from localft.errors import ExportError
from localft.run.folder import RunDir

# Files beside the weights that tools downstream (GGUF converter, chat) read.
TOKENIZER_EXTRAS = ("chat_template.jinja", "generation_config.json")


def merge_dtype(precision: str):
    """Never 4-bit: bf16/fp16 when the run computed in them, else fp32."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def merge_adapter(base_dir: Path, adapter_dir: Path, out: Path, dtype=None) -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .head import load_classifier_base, read_head

    head = read_head(adapter_dir)
    if head is not None:  # a classification head (--head): the same head, its trained weights
        model = load_classifier_base(base_dir, head["labels"], head["pad_token_id"], dtype or torch.float32)
        merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    elif (adapter_dir / "adapter_config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype or torch.float32)
        merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    elif (adapter_dir / "config.json").is_file():  # full fine-tuning saved every weight
        merged = AutoModelForCausalLM.from_pretrained(adapter_dir, dtype=dtype or torch.float32)
    else:
        raise ExportError(f"no adapter in {adapter_dir}; train the run first (localft train / runs resume)")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    if head is not None and tokenizer.pad_token_id is None:  # batched texts pad with the head's token
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(head["pad_token_id"])
    out = Path(out)
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name in TOKENIZER_EXTRAS:
            if (base_dir / name).is_file() and not (tmp / name).exists():
                shutil.copy2(base_dir / name, tmp / name)
    return out


def merge(run: RunDir, out: Path) -> Path:
    from localft.plan.catalog import resolve_model

    spec = run.read_spec()
    return merge_adapter(resolve_model(spec.model), run.adapter_dir, out, merge_dtype(spec.precision))
