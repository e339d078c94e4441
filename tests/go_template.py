"""A small interpreter for the part of Go's text/template that Ollama chat templates use, so tests
can render a Modelfile's TEMPLATE and compare it with the model's Jinja template.

Supported: text, {{ .Field }} / {{ $.Field }} / {{ "literal" }}, if / else if / else / end,
range .Messages (optionally `range $i, $_ := .Messages`), eq, and, ( ), and {{- -}} trimming.
"""

from __future__ import annotations

import re

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\(|\)|[^\s()]+')


def _tokens(template: str) -> list[tuple[str, str]]:
    """[("text", ...), ("action", ...)] with the trim markers applied."""
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        out.append(("text", text))
        out.append(("action", m.group(2)))
        trim_next, pos = bool(m.group(3)), m.end()
    text = template[pos:]
    out.append(("text", text.lstrip() if trim_next else text))
    return out


def _parse(tokens: list[tuple[str, str]], i: int = 0, stop: tuple[str, ...] = ()):
    """A list of nodes up to one of the `stop` keywords: ("text", s), ("expr", e),
    ("if", [(cond, body), ...], else_body), ("range", var, body)."""
    nodes: list = []
    while i < len(tokens):
        kind, value = tokens[i]
        word = value.split(" ", 1)[0] if kind == "action" else ""
        if kind == "text":
            nodes.append(("text", value))
            i += 1
        elif word in stop:
            return nodes, i
        elif word == "if":
            branches, else_body = [], []
            cond = value[3:]
            while True:
                body, i = _parse(tokens, i + 1, ("else", "end"))
                branches.append((cond, body))
                value = tokens[i][1]
                if value.startswith("else if "):
                    cond = value[len("else if ") :]
                    continue
                if value == "else":
                    else_body, i = _parse(tokens, i + 1, ("end",))
                break
            nodes.append(("if", branches, else_body))
            i += 1
        elif word == "range":
            spec = value[len("range ") :]
            index_var = spec.split(",")[0].strip() if ":=" in spec else None
            body, i = _parse(tokens, i + 1, ("end",))
            nodes.append(("range", index_var, spec.split(":=")[-1].strip(), body))
            i += 1
        else:
            nodes.append(("expr", value))
            i += 1
    return nodes, i


def _eval(expr: list[str], scope: dict, root: dict):
    if not expr:
        raise ValueError("empty expression")
    head, *rest = expr
    if head == "eq":
        a, b = _args(rest, scope, root)
        return a == b
    if head == "and":
        values = _args(rest, scope, root)
        return all(values) and values[-1]
    if head.isdigit():
        return int(head)
    if head.startswith('"'):
        return bytes(head[1:-1], "utf-8").decode("unicode_escape")
    if head.startswith("$."):
        return root.get(head[2:], "")
    if head.startswith("."):
        return scope.get(head[1:], "")
    if head.startswith("$"):
        return scope[head]
    raise ValueError(f"unsupported template expression {head!r}")


def _args(tokens: list[str], scope: dict, root: dict) -> list:
    values, i = [], 0
    while i < len(tokens):
        if tokens[i] == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                j += 1
            values.append(_eval(tokens[i + 1 : j - 1], scope, root))
            i = j
        else:
            values.append(_eval([tokens[i]], scope, root))
            i += 1
    return values


def _run(nodes: list, scope: dict, root: dict) -> str:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            out.append(str(_eval(_TOKEN.findall(node[1]), scope, root)))
        elif node[0] == "if":
            for cond, body in node[1]:
                if _eval(_TOKEN.findall(cond), scope, root):
                    out.append(_run(body, scope, root))
                    break
            else:
                out.append(_run(node[2], scope, root))
        else:
            _, index_var, source, body = node
            for i, item in enumerate(_eval([source], scope, root)):
                out.append(_run(body, {**item, **({index_var: i} if index_var else {})}, root))
    return "".join(out)


def render_go(template: str, system: str | None, messages: list[dict]) -> str:
    """What Ollama renders for a conversation: `system` is .System, `messages` the user and
    assistant turns (.Messages, each with .Role and .Content)."""
    nodes, _ = _parse(_tokens(template))
    root = {
        "System": system or "",
        "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages],
    }
    return _run(nodes, root, root)
