"""`localft models --local`: the GGUF models Ollama and LM Studio already hold, as bases to tune."""

from __future__ import annotations

import json


def print_local_models(as_json: bool) -> None:
    from localft.plan.local_models import lmstudio_roots, local_models, ollama_root

    found = local_models()
    if as_json:
        print(json.dumps([local_model_dict(m) for m in found], indent=2))
        return
    print(
        f"Ollama: {ollama_root()}   LM Studio: {', '.join(map(str, lmstudio_roots())) or 'no models folder'}"
    )
    if not found:
        print("no GGUF models found; pull one in Ollama or download one in LM Studio")
        return
    width = max(len(m.id) for m in found)
    print(f"{'id':<{width}}  {'arch':<10} {'params':>6} {'quant':<8} {'chat template':<14} trainable")
    for m in found:
        info = m.info
        print(f"{m.id:<{width}}  {info.architecture:<10} {info.size:>6} {info.quantization:<8} "
              f"{template_label(info.chat_template):<14} {trainable(m) or 'yes'}")  # fmt: skip
    print("train on one: localft train DATA --model ID")


def template_label(template: str | None) -> str:
    from localft.export.ollama import chat_format

    if not template:
        return "none"
    fmt = chat_format(template)
    return fmt.name if fmt else "yes"


def trainable(model) -> str | None:
    """None where localft can train on the file, else why not (the refusal training would give)."""
    from localft.errors import ModelError
    from localft.plan.gguf_base import check_trainable

    try:
        check_trainable(model.info, model.id)
    except ModelError as exc:
        return "no: " + str(exc).split(": ", 1)[1].split(", so", 1)[0]
    return None


def local_model_dict(model) -> dict:
    info = model.info
    return {
        "id": model.id, "app": model.app, "name": model.name, "gguf": str(model.gguf),
        "architecture": info.architecture, "params": info.params, "quantization": info.quantization,
        "chat_template": info.chat_template, "context_length": info.context_length,
        "stops": list(model.stops), "trainable": trainable(model) is None, "problem": trainable(model),
    }  # fmt: skip
