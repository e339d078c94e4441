"""Chat templates from model files are rendered in the sandbox with bounds: a template that loops,
balloons or recurses is a one-line error within seconds, and every real template renders as
before."""

from __future__ import annotations

import time

import pytest
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from localft.chat.template import RENDER_SECONDS, render_chat
from localft.errors import ExportError
from tests.hostile.models import HOSTILE_TEMPLATES
from tests.real_material import template, template_names

MESSAGES = [{"role": "user", "content": "hi"}]
EXTRA = {
    "lipsum": "{{ lipsum(1000000000) }}",
    "center": "{{ 'a' | center(10000000000) }}",
    "power": "{{ 10 ** 10000000000 }}",
    "replace-amplifier": "{{ ('a' * 4000000).replace('a', 'a' * 4000000) }}",
    "join-amplifier": "{{ ('x' * 4000000).join(range(100000)|map('string')) }}",
    "deep-nesting": "{% if true %}" * 5000 + "x" + "{% endif %}" * 5000,
    "huge-template": "x" * (2 << 20),
}


@pytest.mark.parametrize("name", [*HOSTILE_TEMPLATES, *EXTRA])
def test_hostile_template_is_a_one_line_error_in_seconds(name):
    start = time.monotonic()
    with pytest.raises(ExportError, match="the model's chat template failed to render") as info:
        render_chat({**HOSTILE_TEMPLATES, **EXTRA}[name], MESSAGES)
    assert time.monotonic() - start < RENDER_SECONDS + 2
    assert "\n" not in str(info.value)


def _plain_sandbox(text: str, messages: list[dict]) -> str:
    """What rendering did before the bounds: the immutable sandbox with transformers' globals."""

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: time.strftime(fmt))
    return env.from_string(text).render(
        messages=messages, bos_token="<s>", eos_token="</s>", add_generation_prompt=True
    )


def test_every_real_template_renders_as_it_did_without_bounds():
    turns = [
        {"role": r, "content": f"turn {i}: " + "word " * 40} for i, r in enumerate(["user", "assistant"] * 8)
    ]
    messages = [{"role": "system", "content": "Be brief."}, *turns, {"role": "user", "content": "last one"}]
    checked = 0
    for name in template_names():
        text = template(name)
        try:
            want = _plain_sandbox(text, messages)
        except Exception:  # a template that refuses this conversation must refuse it bounded too
            with pytest.raises(ExportError):
                render_chat(text, messages, bos="<s>", eos="</s>")
            continue
        assert render_chat(text, messages, bos="<s>", eos="</s>") == want, name
        checked += 1
    assert checked >= 50
