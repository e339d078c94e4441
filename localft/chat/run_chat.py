"""Chatting with a run: what to load (its preferred GGUF, or the user's base GGUF with the run's
adapter on it) and the chat settings it trained with (ChatSpec)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localft.chat.session import ChatSession
from localft.config import ChatSpec, build_spec
from localft.run.export import training_system_prompt
from localft.run.folder import RunDir

# A run's GGUF to chat with, most useful first.
QUANT_PREFERENCE = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "Q3_K_M", "Q2_K", "F16", "BF16", "F32")


@dataclass(frozen=True)
class ChatModel:
    """What a chat loads: one GGUF, or a base GGUF with a LoRA adapter GGUF applied by llama.cpp."""

    gguf: Path
    adapter: Path | None = None
    label: str = ""  # how the faces name it (an Ollama blob's file name says nothing)

    @property
    def name(self) -> str:
        return self.label or self.gguf.name

    def open(self, spec: ChatSpec | None = None, **options) -> ChatSession:
        return ChatSession(self.gguf, spec, lora_path=self.adapter, name=self.name, **options)


def model_ggufs(folder: Path) -> list[Path]:
    """The model GGUFs in a folder (a run's gguf/), sorted by name; the LoRA adapter files an export
    writes beside them (adapter.gguf, NAME-lora-F32.gguf) are no model."""
    from localft.run.local_adapter import ADAPTER_FILE

    found = sorted(Path(folder).glob("*.gguf")) if Path(folder).is_dir() else []
    return [f for f in found if f.name != ADAPTER_FILE and "-lora-" not in f.name]


def run_gguf(folder: Path) -> Path | None:
    """The preferred model GGUF in a folder (a run's gguf/), or None."""
    found = model_ggufs(folder)
    for quant in QUANT_PREFERENCE:
        for f in found:
            if f.stem.upper().endswith(f"-{quant}"):
                return f
    return found[0] if found else None


def run_chat_model(run: RunDir) -> ChatModel | None:
    """A run's exported model to chat with: a merged GGUF where the run has one, else (a run on an
    Ollama / LM Studio model, exported adapter-only) the user's own base file with adapter.gguf on
    it; None before any export. A ModelError when that base is no longer in the app's store."""
    from localft.plan.local_models import find_local_model, is_local_id
    from localft.run.local_adapter import ADAPTER_FILE

    merged = run_gguf(run.gguf_dir)
    if merged is not None:
        return ChatModel(merged)
    adapter = run.gguf_dir / ADAPTER_FILE
    model_id = run.read_spec().model
    if not adapter.is_file() or not is_local_id(model_id):
        return None
    local = find_local_model(model_id)
    return ChatModel(local.gguf, adapter, f"{local.name} + {ADAPTER_FILE}")


def base_chat_model(run: RunDir | None) -> ChatModel | None:
    """The base model alone, for side by side: the embedded GGUF, or the user's Ollama / LM Studio
    file the run trained on; None for a hub model (localft holds no GGUF of it)."""
    from localft.plan.catalog import EMBEDDED, embedded_gguf_path
    from localft.plan.local_models import find_local_model, is_local_id

    model = run.read_spec().model if run else EMBEDDED
    if model == EMBEDDED:
        return ChatModel(embedded_gguf_path())
    if is_local_id(model):
        local = find_local_model(model)
        return ChatModel(local.gguf, label=local.name)
    return None


def run_chat_spec(run: RunDir | None, **given) -> ChatSpec:
    """ChatSpec's defaults with the system prompt the run trained with (its export report's, else
    its training data's), then what the user gave (None: not given)."""
    given = {k: v for k, v in given.items() if v is not None}
    if run is not None and "system" not in given:
        given["system"] = trained_system_prompt(run)
    return build_spec(ChatSpec, given, where="chat settings")


def trained_system_prompt(run: RunDir) -> str | None:
    report = run.gguf_dir / "export.json"
    try:
        return json.loads(report.read_text(encoding="utf-8")).get("system_prompt")
    except (FileNotFoundError, ValueError):
        return training_system_prompt(run)
