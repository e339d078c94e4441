"""What an evaluation reads from a run: its held-out rows and prompts, its task, its tuned GGUF
and its tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from localft.errors import ExportError
from localft.run.folder import RunDir, recipe_info

Task = Literal["style", "json", "classify", "domain"]
DEFAULT_QUANT = "Q4_K_M"


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def passage_prompt(text: str, opening_words: int = 12, rest_words: int = 60) -> tuple[str, str]:
    """A held-out passage cut into its opening (the prompt) and what follows (the real continuation)."""
    words = text.split()
    return " ".join(words[:opening_words]), " ".join(words[opening_words : opening_words + rest_words])


def reference_text(row: dict) -> str:
    """What a model is scored on in `row`: the last reply of a chat row, all of a text row."""
    return row["text"] if "text" in row else split_prompt(row)[1]


def split_prompt(row: dict) -> tuple[list[dict], str]:
    """The turns before the last assistant reply, and that reply."""
    msgs = row["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return msgs[:last], msgs[last]["content"]


def run_task(run: RunDir) -> Task:
    """The task a recipe recorded for the run; plain runs are style runs."""
    return (recipe_info(run) or {}).get("task", "style")


def tuned_gguf_path(run: RunDir, quant: str | None = None) -> Path:
    """The run's exported GGUF of `quant` (default: Q4_K_M, else the first one written); adapter
    files are no model (tuned_model pairs an adapter-only export's with its base)."""
    from localft.chat.run_chat import model_ggufs

    found = model_ggufs(run.gguf_dir)
    if quant:
        found = [p for p in found if p.stem.upper().endswith(quant.upper())]
    preferred = [p for p in found if p.stem.upper().endswith(DEFAULT_QUANT)]
    if not (preferred or found):
        want = f" {quant}" if quant else ""
        raise ExportError(f"run {run.id} has no{want} GGUF yet; run `localft export {run.id}` first")
    return (preferred or found)[0]


def tuned_model(run: RunDir, quant: str | None = None):
    """What evaluation loads as the tuned model (a ChatModel): the run's GGUF of `quant`, or, for a
    run on the user's Ollama / LM Studio model exported adapter-only, that file + adapter.gguf."""
    from localft.chat.run_chat import ChatModel, run_chat_model

    try:
        return ChatModel(tuned_gguf_path(run, quant))
    except ExportError:
        paired = run_chat_model(run)
        if paired is None or paired.adapter is None:
            raise
        base_quant = quant_of_model(paired) if quant else None
        if quant and base_quant != quant.upper():
            raise ExportError(
                f"run {run.id} was exported as an adapter on a {base_quant} base; leave out --quant"
            ) from None
        return paired


def as_model(model):
    """A ChatModel of a GGUF path (what --gguf options give), or the ChatModel itself."""
    from localft.chat.run_chat import ChatModel

    return model if isinstance(model, ChatModel) else ChatModel(Path(model))


def model_label(model) -> str:
    """How a report names what it evaluated: the file, or the base file + the adapter file."""
    return str(model.gguf) + (f" + {model.adapter}" if model.adapter else "")


def quant_of_model(model) -> str:
    """The quantization of a ChatModel's weights: its file's name, or for base + adapter the base's
    own metadata (an Ollama blob's name says nothing)."""
    if model.adapter is None:
        return quant_of(model.gguf)
    from localft.plan.gguf_base import read_gguf_info

    return read_gguf_info(model.gguf).quantization.upper()


def quant_of(gguf: Path) -> str:
    return gguf.stem.rsplit("-", 1)[-1].upper()


def tokenizer_for(run: RunDir, model: str):
    from transformers import AutoTokenizer

    from localft.plan.catalog import resolve_model

    folder = run.merged_dir if (run.merged_dir / "tokenizer_config.json").is_file() else resolve_model(model)
    return AutoTokenizer.from_pretrained(folder)
