"""Chatting with a run: its preferred GGUF and the chat settings it trained with (ChatSpec)."""

from __future__ import annotations

import json
from pathlib import Path

from localft.config import ChatSpec, build_spec
from localft.run.export import training_system_prompt
from localft.run.folder import RunDir

# A run's GGUF to chat with, most useful first.
QUANT_PREFERENCE = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "Q3_K_M", "Q2_K", "F16", "BF16", "F32")


def run_gguf(folder: Path) -> Path | None:
    """The preferred GGUF in a folder (a run's gguf/), or None."""
    found = sorted(Path(folder).glob("*.gguf")) if Path(folder).is_dir() else []
    for quant in QUANT_PREFERENCE:
        for f in found:
            if f.stem.upper().endswith(f"-{quant}"):
                return f
    return found[0] if found else None


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
