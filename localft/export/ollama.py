"""Ollama Modelfile and LM Studio folder layout for an exported GGUF."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from localft.runs import atomic_write_text

# Go templates (Ollama's syntax) for the chat formats the supported families use, with the
# strings that end a turn. Each renders the same text as the family's Jinja template.
_CHATML = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
_LLAMA3 = (
    "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_GEMMA = (
    '{{- range $i, $_ := .Messages }}{{- if eq .Role "user" }}<start_of_turn>user\n'
    "{{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}<end_of_turn>\n"
    '{{ else if eq .Role "assistant" }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n{{ end }}{{ end }}'
    "<start_of_turn>model\n"
)
_PHI3 = (
    "{{- if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}"
    "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n"
)
_MISTRAL = (
    '{{- range $i, $_ := .Messages }}{{- if eq .Role "user" }}[INST] '
    "{{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]"
    '{{ else if eq .Role "assistant" }} {{ .Content }}</s>{{ end }}{{ end }}'
)


@dataclass(frozen=True)
class ChatFormat:
    name: str
    marker: str  # a string only this family's Jinja template contains
    go_template: str
    stops: tuple[str, ...]


CHAT_FORMATS = (
    ChatFormat("chatml", "<|im_start|>", _CHATML, ("<|im_start|>", "<|im_end|>")),
    ChatFormat(
        "llama3", "<|start_header_id|>", _LLAMA3, ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    ),
    ChatFormat("gemma", "<start_of_turn>", _GEMMA, ("<start_of_turn>", "<end_of_turn>")),
    ChatFormat("phi3", "<|assistant|>", _PHI3, ("<|end|>", "<|user|>", "<|assistant|>", "<|endoftext|>")),
    ChatFormat("mistral", "[INST]", _MISTRAL, ("[INST]", "[/INST]")),
)


def chat_format(jinja_template: str | None) -> ChatFormat | None:
    for fmt in CHAT_FORMATS:
        if jinja_template and fmt.marker in jinja_template:
            return fmt
    return None


def default_system_prompt(jinja_template: str) -> str | None:
    """The system prompt a template inserts when the chat has none (SmolLM2 and Qwen do)."""
    from localft.chat_template import render_chat

    marker = "\x00USER\x00"
    text = render_chat(jinja_template, [{"role": "user", "content": marker}], add_generation_prompt=False)
    for fmt_open, fmt_close in (("<|im_start|>system\n", "<|im_end|>"), ("<|system|>\n", "<|end|>")):
        start = text.find(fmt_open)
        if start != -1 and start < text.find(marker):
            body = text[start + len(fmt_open) :]
            return body[: body.find(fmt_close)]
    return None


def _quote(text: str) -> str:
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def write_modelfile(
    out_dir: Path,
    gguf_name: str,
    jinja_template: str | None,
    *,
    system_prompt: str | None = None,
    eos_token: str | None = None,
) -> Path:
    """Write `Modelfile` beside the GGUF: FROM, TEMPLATE, stop parameters and SYSTEM."""
    fmt = chat_format(jinja_template)
    lines = [f"FROM ./{gguf_name}"]
    if fmt is not None:
        lines.append(f"TEMPLATE {_quote(fmt.go_template)}")
    else:
        lines.append("# the chat template is not a known format: Ollama reads the one inside the GGUF")
    stops = list(fmt.stops if fmt else ())
    if eos_token and eos_token not in stops:
        stops.append(eos_token)
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    system = system_prompt or (default_system_prompt(jinja_template) if jinja_template else None)
    if system:
        lines.append(f"SYSTEM {_quote(system)}")
    path = Path(out_dir) / "Modelfile"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def lay_out_lmstudio(gguf: Path, out_dir: Path, name: str, publisher: str = "localft") -> Path:
    """LM Studio's models/<publisher>/<model>/<file>.gguf layout (hard links; copies across disks)."""
    folder = Path(out_dir) / "lmstudio" / publisher / f"{name}-GGUF"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(gguf).name
    target.unlink(missing_ok=True)
    try:
        os.link(gguf, target)
    except OSError:
        shutil.copy2(gguf, target)
    return folder
