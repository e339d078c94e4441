"""Render conversations for training with a model's own chat template (transformers' sandboxed
`apply_chat_template`) and find where each message's text landed, whatever the template does
around it."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import TemplateError

from localft.errors import DataError, LocalftError, NoChatTemplate

# Private-use characters: a probe replaces one message's content to see where that content renders.
PROBES = [chr(c) for c in range(0xE000, 0xE100)]
FOLD_SEPARATOR = "\n\n"  # system text + this + first user message, as Gemma's model cards show
WAY_OUT = "train on every token: --set train_on=all (for `localft data import`: --train-on all)"
_SYSTEM_ROLE: dict[tuple, bool] = {}  # per (template, bos, eos): rendering a probe costs a few ms


def template_name(tokenizer) -> str:
    """How errors name a template: the model folder or id the tokenizer came from."""
    return f"the chat template of {getattr(tokenizer, 'name_or_path', '') or 'this model'}"


def _require_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplate(getattr(tokenizer, "name_or_path", "") or "this model")


def _apply(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    from jinja2 import TemplateError

    _require_template(tokenizer)
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except TemplateError as exc:
        raise DataError(f"{template_name(tokenizer)} cannot render this conversation: {exc}") from None


def has_system_role(tokenizer) -> bool:
    """Whether the tokenizer's template renders a system message in a conversation that ends with
    a reply, as training renders it. Some templates raise (Gemma 2), some drop it silently
    (Mistral-Nemo puts it only into a user turn that ends the conversation)."""
    _require_template(tokenizer)
    key = (str(tokenizer.chat_template), tokenizer.bos_token, tokenizer.eos_token)
    return renders_system(lambda messages: tokenizer.apply_chat_template(messages, tokenize=False), key)


def renders_system(render_messages: Callable[[list[dict]], str], key: tuple) -> bool:
    """Whether a template, given as the function that renders it, shows a system message's text;
    `key` names the template for the cache. Every place that renders a chat (training, the GGUF
    chat, verification) decides the system fold through this."""
    if key not in _SYSTEM_ROLE:
        probe = [
            {"role": "system", "content": PROBES[0]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
        try:
            _SYSTEM_ROLE[key] = PROBES[0] in render_messages(probe)
        except (TemplateError, LocalftError):
            _SYSTEM_ROLE[key] = False
    return _SYSTEM_ROLE[key]


def folds_system(tokenizer, messages: list[dict]) -> bool:
    """Whether `fold_system` moves this conversation's system prompt into its first user turn."""
    return bool(messages) and messages[0]["role"] == "system" and not has_system_role(tokenizer)


def fold_system(tokenizer, messages: list[dict]) -> list[dict]:
    """The messages as the template can take them: where it has no system role, a leading system
    message opens the first user turn instead (what those models' cards tell you to do)."""
    if not folds_system(tokenizer, messages):
        return messages
    folded = fold_into_first_user(messages)
    if folded is None:
        raise DataError(
            f"{template_name(tokenizer)} has no system role and this conversation has no user turn to "
            "fold the system prompt into; add a user turn or drop the system prompt"
        )
    return folded


def fold_into_first_user(messages: list[dict]) -> list[dict] | None:
    """A leading system message moved to the top of the first user turn; None without a user turn."""
    system, rest = messages[0], messages[1:]
    first_user = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
    if first_user is None:
        return None
    folded = {**rest[first_user], "content": system["content"] + FOLD_SEPARATOR + rest[first_user]["content"]}
    return [*rest[:first_user], folded, *rest[first_user + 1 :]]


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it (the system prompt folded where the template needs it)."""
    return _apply(tokenizer, fold_system(tokenizer, messages), add_generation_prompt)


def content_spans(tokenizer, messages: list[dict], text: str) -> list[tuple[int, int] | None]:
    """Where each message's content landed in `text` (the render of `messages`, already folded):
    render again with only that content swapped for a probe; what differs is the content as the
    template rendered it (trimmed, a reasoning block dropped...). None for system messages."""
    spans: list[tuple[int, int] | None] = []
    for j, message in enumerate(messages):
        content = message.get("content")
        if message["role"] == "system" or not isinstance(content, str):
            spans.append(None)
            continue
        probe = next(p for p in PROBES if p not in content)  # so it differs from the content's ends
        other = _apply(tokenizer, [*messages[:j], {**message, "content": probe}, *messages[j + 1 :]], False)
        start = _common_prefix(text, other)
        stop = len(text) - _common_suffix(text, other, min(len(text), len(other)) - start)
        spans.append((start, stop))
    return spans


def assistant_header(tokenizer, messages_before: list[dict]) -> str:
    """What the generation prompt adds after `messages_before` (e.g. '<|im_start|>assistant\\n')."""
    if not messages_before:
        return ""
    plain = _apply(tokenizer, messages_before, False)
    prompted = _apply(tokenizer, messages_before, True)
    return prompted[_common_prefix(plain, prompted) :]


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: str, b: str, limit: int) -> int:
    i = 0
    while i < limit and a[-1 - i] == b[-1 - i]:
        i += 1
    return i
