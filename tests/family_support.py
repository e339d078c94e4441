"""What the per-family tests share: the families' rows, what waits on other parts of issue 11,
the family tokenizers, a merged model per family and HF logits, each made once per session."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from localft.config import LoraSpec, TrainSpec
from localft.run.folder import new_run
from tests.tiny import FAMILIES, family_model_dir

NAMES = list(FAMILIES)
# Templates the assistant-only mask cannot follow yet: none since issue 11 item 1 landed.
MASK_PENDING: dict[str, str] = {}
# Vocabularies whose GGUF does not yet tokenize a chat exactly like HF.
TOKENIZER_PENDING = {
    "phi4-mini": "stand-in tokenizer (Phi-3's SentencePiece vocabulary, not Phi-4-mini's 200k BPE): llama.cpp "
    "adds the BOS that HF's chat render leaves out",
}
SYSTEM = "You write short posts for Ann."
TOPICS = ["coffee", "rust", "hiking", "jazz", "gardens", "trains"]


def pending(table: dict, name: str):
    return [pytest.mark.xfail(reason=table[name], strict=True)] if name in table else []


def chat_rows(n: int) -> list[dict]:
    return [{"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Write about {TOPICS[i % len(TOPICS)]}."},
        {"role": "assistant", "content": f"I love {TOPICS[i % len(TOPICS)]}. " * (1 + i % 3) + "That is all."},
    ]} for i in range(n)]  # fmt: skip


def text_rows(n: int) -> list[dict]:
    return [{"text": f"I love {TOPICS[i % len(TOPICS)]}. " * (2 + i % 3) + "That is all."} for i in range(n)]


def training_rows(name: str, n: int) -> list[dict]:
    """Chat rows through the family's template; plain text where the mask cannot follow it yet."""
    return text_rows(n) if name in MASK_PENDING else chat_rows(n)


@cache
def tokenizer(name: str):
    """The family model's tokenizer (its real vocabulary, eos and chat template), loaded once."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(family_model_dir(name))


_MERGED: dict[str, Path] = {}
_ADAPTERS: dict[str, Path] = {}


def merged(name: str) -> Path:
    """The family model merged with a random (non-zero) torch LoRA adapter, once per session."""
    if name not in _MERGED:
        import torch

        from localft.backends.torch import TorchBackend
        from localft.backends.torch.modeling import Placement, build_lora_model

        base = family_model_dir(name)
        spec = TrainSpec(model=str(base), device="cpu", lora=LoraSpec(rank=4, alpha=8))
        run = new_run(spec)
        model = build_lora_model(base, spec, Placement("cpu", "fp32"), fused=False)
        torch.manual_seed(1)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_" in n:
                    p.copy_(0.05 * torch.randn_like(p))
        model.save_pretrained(run.adapter_dir)
        _MERGED[name] = TorchBackend().merge(run, run.merged_dir)
        _ADAPTERS[name] = run.adapter_dir
    return _MERGED[name]


def merged_adapter(name: str) -> Path:
    """The adapter `merged(name)` merged."""
    merged(name)
    return _ADAPTERS[name]


@cache
def _hf_logits(folder: Path, ids: tuple[int, ...], adapter: Path | None) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    with torch.no_grad():
        return model.eval()(torch.tensor([ids])).logits[0].numpy()


def hf_logits(folder: Path, ids: list[int], adapter: Path | None = None) -> np.ndarray:
    return _hf_logits(Path(folder), tuple(ids), adapter)


def sample_ids(name: str) -> list[int]:
    tok = tokenizer(name)
    text = (
        "The harbour town woke slowly that spring. Fishing boats came back before dawn, with crates of fish."
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return ([tok.bos_token_id] if tok.bos_token_id is not None else []) + ids
