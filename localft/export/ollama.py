"""Ollama Modelfile and LM Studio folder layout for an exported GGUF."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_text

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


# Hand-written formats, for templates the derivation below cannot follow (Gemma 2/3 refuse a
# system message; their Modelfile folds it into the first user turn, as their cards say).
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


@dataclass(frozen=True)
class TurnPieces:
    """The text a chat template puts around each kind of message, read off its own renderings."""

    head_system: str  # before the system text
    system_close: str
    head_no_system: str  # what opens a conversation without a system message
    user_open: str
    user_close: str
    assistant_open: str
    assistant_close: str
    generation: str  # after the last user turn, where the reply starts

    def render(self, messages: list[dict]) -> str:
        """The text these pieces give a conversation (what the Go template below renders)."""
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        text = f"{self.head_system}{system}{self.system_close}" if system else self.head_no_system
        for m in messages[1 if system else 0 :]:
            if m["role"] == "user":
                text += self.user_open + m["content"] + self.user_close
            else:
                text += self.assistant_open + m["content"] + self.assistant_close
        return text + self.generation

    def go_template(self) -> str:
        """Ollama's Go template for these pieces. No {{- -}} trimming: the pieces carry their own
        newlines, which trimming would eat."""

        def lit(text: str) -> str:
            return text.replace("{{", '{{ "{{" }}')

        return (
            f"{{{{ if .System }}}}{lit(self.head_system)}{{{{ .System }}}}{lit(self.system_close)}"
            f"{{{{ else }}}}{lit(self.head_no_system)}{{{{ end }}}}"
            f'{{{{ range .Messages }}}}{{{{ if eq .Role "user" }}}}{lit(self.user_open)}{{{{ .Content }}}}'
            f'{lit(self.user_close)}{{{{ else if eq .Role "assistant" }}}}{lit(self.assistant_open)}'
            f"{{{{ .Content }}}}{lit(self.assistant_close)}{{{{ end }}}}{{{{ end }}}}{lit(self.generation)}"
        )

    @property
    def stops(self) -> tuple[str, ...]:
        """The first two markers between a reply and the next user turn: the end-of-turn token
        and the one that opens the next turn."""
        return tuple(dict.fromkeys(_MARKER.findall(self.assistant_close + self.user_open)[:2]))


_SYSTEM, _USER1, _REPLY1, _USER2, _REPLY2, _USER3 = (
    "SYSTEMTEXT",
    "USERONE",
    "REPLYONE",
    "USERTWO",
    "REPLYTWO",
    "USERTHREE",
)


# Chat markup tokens: <|im_end|>, <turn|>, <end_of_turn>, <｜User｜>, [INST] ...
_MARKER = re.compile(r"<[^<>\s]+>|\[/?[A-Z_]+\]")


def _common_prefix(a: str, b: str) -> str:
    return a[: next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))]


def _common_suffix(a: str, b: str) -> str:
    return _common_prefix(a[::-1], b[::-1])[::-1]


def _cut(text: str, markers: list[str]) -> list[str] | None:
    """The text between the markers (in order), or None when they are not all there, in order."""
    parts, rest = [], text
    for marker in markers:
        head, sep, rest = rest.partition(marker)
        if not sep:
            return None
        parts.append(head)
    return parts + [rest]


def turn_pieces(jinja_template: str, eos: str = "") -> TurnPieces | None:
    """Read the turn markup off the template's renderings of a few conversations; None when the
    template does not build a conversation out of per-message pieces (then a hand-written format
    is used, or none)."""
    from localft.chat.template import render_chat
    from localft.errors import ExportError

    def conversation(system: bool, turns: list[str]) -> list[dict]:
        roles = ["user", "assistant"] * len(turns)
        return [{"role": "system", "content": _SYSTEM}] * system + [
            {"role": r, "content": t} for r, t in zip(roles, turns, strict=False)
        ]

    def render(messages: list[dict], generation: bool = True) -> str:
        return render_chat(jinja_template, messages, eos=eos, add_generation_prompt=generation)

    try:
        with_system = render(conversation(True, [_USER1, _REPLY1, _USER2]))
        without = render(conversation(False, [_USER1, _REPLY1, _USER2]))
        lone_user = render(conversation(False, [_USER1]), generation=False)
    except ExportError:
        return None
    parts = _cut(with_system, [_SYSTEM, _USER1, _REPLY1, _USER2])
    bare = _cut(without, [_USER1, _REPLY1, _USER2])
    after_lone = _cut(lone_user, [_USER1])
    if parts is None or bare is None or after_lone is None:
        return None
    head, system_user, user_reply, reply_user, tail = parts
    # Where one turn's closing text ends and the next one's opening begins: the opening of a user
    # turn is what every user turn starts with (the first one too); the closing of a user turn is
    # what it ends with when nothing follows.
    user_open = _common_suffix(_common_suffix(system_user, reply_user), bare[0])
    user_close = _common_prefix(_common_prefix(user_reply, tail), after_lone[1])
    pieces = TurnPieces(
        head_system=head,
        system_close=system_user[: len(system_user) - len(user_open)],
        head_no_system=bare[0][: len(bare[0]) - len(user_open)],
        user_open=user_open,
        user_close=user_close,
        assistant_open=user_reply[len(user_close) :],
        assistant_close=reply_user[: len(reply_user) - len(user_open)],
        generation=tail[len(user_close) :],
    )
    # Keep them only if they give exactly what the template gives, longer conversations included.
    checks = [conversation(True, [_USER1, _REPLY1, _USER2, _REPLY2, _USER3]), conversation(False, [_USER1])]
    try:
        if all(pieces.render(m) == render(m) for m in checks):
            return pieces
    except ExportError:
        pass
    return None


def default_system_prompt(jinja_template: str) -> str | None:
    """The system prompt a template inserts when the chat has none (SmolLM2 and Qwen do)."""
    from localft.chat.template import render_chat

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
    gguf_name: str | None,
    jinja_template: str | None,
    *,
    system_prompt: str | None = None,
    eos_token: str | None = None,
    from_model: str | None = None,
    adapter: str | None = None,
) -> Path:
    """Write `Modelfile` beside the GGUF: FROM, TEMPLATE, stop parameters and SYSTEM. The TEMPLATE
    is read off the model's own chat template, so Ollama builds the same prompt text; templates
    it cannot be read off fall back to a known family format. With `from_model` (a model Ollama
    holds) and `adapter` (a LoRA GGUF beside the Modelfile) it builds on that model instead."""
    pieces = turn_pieces(jinja_template, eos_token or "") if jinja_template else None
    fmt = None if pieces else chat_format(jinja_template)
    lines = [f"FROM {from_model}" if from_model else f"FROM ./{gguf_name}"]
    if adapter:
        lines.append(f"ADAPTER ./{adapter}")
    if pieces is not None:
        lines.append(f"TEMPLATE {_quote(pieces.go_template())}")
    elif fmt is not None:
        lines.append(f"TEMPLATE {_quote(fmt.go_template)}")
    else:
        lines.append("# the chat template is not a known format: Ollama reads the one inside the GGUF")
    stops = list(pieces.stops if pieces else fmt.stops if fmt else ())
    if eos_token and eos_token not in stops:
        stops.append(eos_token)
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stops]
    # Read-off templates already open a conversation without a system message as the model's own
    # template does (its default system prompt included); hand-written ones need it as SYSTEM.
    default = default_system_prompt(jinja_template) if jinja_template and pieces is None else None
    system = system_prompt or default
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
