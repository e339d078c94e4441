"""Chat templates from model files, rendered in jinja2's immutable sandbox and bounded in time, in
output size and in the size of any value the template builds, so a hostile template (a GGUF is
anyone's file) fails with one line instead of hanging or filling memory."""

from __future__ import annotations

import functools
import re
import sys
import time

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

RENDER_SECONDS = 3.0  # real templates render in milliseconds
MAX_CHARS = 4 << 20  # the rendered prompt, and any string, list or number a template builds
MAX_TEMPLATE_CHARS = 1 << 20  # real templates are a few to some tens of KB
_HUGE_FORMAT_WIDTH = re.compile(r"\d{8,}")  # "%999999999d" or "{:>999999999}" would fill memory
_SIZED = (str, bytes, list, tuple, dict, set, frozenset, range)


class TemplateBoundError(TemplateError):
    """The template went past a bound: too slow, too much output, or too large a value."""


def too_big(value) -> bool:
    """A value that would make a template allocate beyond the bound (a huge count or a huge string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > MAX_CHARS
    return isinstance(value, _SIZED) and len(value) > MAX_CHARS


def _refuse_big(what: str, *values) -> None:
    if any(too_big(v) for v in values):
        raise TemplateBoundError(f"it builds a value larger than {MAX_CHARS:,} ({what})")


class BoundedNamespace(Namespace):
    """`namespace()` whose attributes stay within the bound (a loop doubling `ns.text` would not)."""

    def __setitem__(self, name, value) -> None:
        _refuse_big(f"ns.{name}", value)
        super().__setitem__(name, value)


def amplified_size(method: str, target, args) -> int:
    """The size a replace or join would produce (the one-step amplifiers among str methods and
    filters), so it is refused before it allocates; 0 for anything else."""
    if method == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in (target, *args[:2])):
        old, new = args[:2]
        return len(target) + (len(target) + 1) // max(len(old), 1) * len(new)
    if method == "join" and isinstance(target, str) and args and isinstance(args[0], _SIZED):
        return len(target) * len(args[0])
    return 0


def sized(items):
    """`items` as a list when it is a generator, so a join can be measured before it runs
    (template iterables are finite: range is capped at 100,000 items)."""
    return items if isinstance(items, _SIZED) else list(items)


def _bounded_filter(name: str, func):
    passes_state = hasattr(func, "jinja_pass_arg")  # context, eval context or environment comes first

    @functools.wraps(func)  # keeps jinja's pass_context / pass_environment markers
    def wrapper(*args, **kwargs):
        state, values = (args[:1], args[1:]) if passes_state else ((), args)
        _refuse_big(f"filter {name}", *values[1:], *kwargs.values())
        if name == "replace" and len(values) >= 3:
            _refuse_big("filter replace", amplified_size("replace", values[0], values[1:3]))
        if name == "join" and values:
            values = (sized(values[0]), *values[1:])
            separator = values[1] if len(values) > 1 else kwargs.get("d", "")
            _refuse_big("filter join", amplified_size("join", separator, values[:1]))
        return func(*state, *values, **kwargs)

    return wrapper


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, refusing operations that would build values past the bound."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self):
        super().__init__(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        self.globals.pop("lipsum", None)  # lipsum(n=10**9) would write gigabytes
        self.globals["namespace"] = BoundedNamespace
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context, operator, left, right):
        if operator == "*" and (isinstance(left, _SIZED) or isinstance(right, _SIZED)):
            seq, count = (left, right) if isinstance(left, _SIZED) else (right, left)
            if isinstance(count, int):
                _refuse_big("a repeated sequence", len(seq) * count)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            _refuse_big("a power", right * abs(left).bit_length())  # the result's size in bits
        elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
            _refuse_big("a sum", len(left) + len(right))
        elif operator == "%" and isinstance(left, str) and _HUGE_FORMAT_WIDTH.search(left):
            _refuse_big("a format width", MAX_CHARS + 1)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value):
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and _HUGE_FORMAT_WIDTH.search(owner):
            _refuse_big("a format width", MAX_CHARS + 1)
        return super().wrap_str_format(value)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja's own signature
        _refuse_big("a call argument", *args, *kwargs.values())
        name, owner = getattr(__obj, "__name__", ""), getattr(__obj, "__self__", None)
        if name == "join" and isinstance(owner, str) and args:
            args = (sized(args[0]), *args[1:])
        _refuse_big(f"str.{name}", amplified_size(name, owner, args))
        result = super().call(__context, __obj, *args, **kwargs)
        _refuse_big("a call result", result)
        return result


_ENV: BoundedSandbox | None = None


def sandbox() -> BoundedSandbox:
    global _ENV
    if _ENV is None:
        _ENV = BoundedSandbox()
        _ENV.globals["raise_exception"] = _raise_exception
        _ENV.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
    return _ENV


@functools.lru_cache(maxsize=16)
def _compile(template: str):
    """Compiled once per template: a chat session renders the same one every turn."""
    return sandbox().from_string(template)


def _raise_exception(message):
    raise TemplateError(message)


def render_bounded(template: str, **context) -> str:
    """Render `template` with `context`; TemplateError (TemplateBoundError past a bound) on failure."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateBoundError(f"it is longer than {MAX_TEMPLATE_CHARS:,} characters")
    try:
        compiled = _compile(template)
    except RecursionError:
        raise TemplateBoundError("it nests too deeply") from None
    deadline = time.monotonic() + RENDER_SECONDS

    def check(frame) -> None:
        if time.monotonic() > deadline:
            raise TemplateBoundError(f"it ran longer than {RENDER_SECONDS:g} s")
        # Values a template keeps growing in its own variables (`{% set s = s ~ s %}`, macro args).
        for value in frame.f_locals.values():
            _refuse_big("a template variable", value)

    def trace_line(frame, event, arg):
        check(frame)
        return trace_line

    def trace_call(frame, event, arg):
        # Only the template's own compiled code is traced, line by line: its loops cannot hide.
        if frame.f_code.co_filename == "<template>":
            check(frame)
            return trace_line
        return None

    previous = sys.gettrace()
    sys.settrace(trace_call)
    pieces, size = [], 0
    try:
        for piece in compiled.generate(**context):
            size += len(piece)
            if size > MAX_CHARS:
                raise TemplateBoundError(f"its output is longer than {MAX_CHARS:,} characters")
            pieces.append(piece)
    except RecursionError:
        raise TemplateBoundError("it nests or recurses too deeply") from None
    except MemoryError:
        raise TemplateBoundError("it needs more memory than this machine has") from None
    finally:
        sys.settrace(previous)
    return "".join(pieces)


def render_chat(
    template: str, messages: list[dict], *, bos: str = "", eos: str = "", add_generation_prompt=True
) -> str:
    """Render a chat template the way transformers does, in a sandbox bounded in time and size."""
    from localft.errors import ExportError

    try:
        return render_bounded(
            template,
            messages=messages,
            bos_token=bos,
            eos_token=eos,
            add_generation_prompt=add_generation_prompt,
        )
    except TemplateError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"the model's chat template failed to render: {reason}") from None
