"""Loading GGUF files in llama-cpp-python with its native logging kept off the terminal.

llama.cpp writes from C straight to file descriptor 2; the dashboard draws on that terminal, so
every native call here runs with fd 2 pointed at a log file (or /dev/null).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from localft.errors import ExportError

_fd_lock = threading.RLock()
_depth = 0


@contextlib.contextmanager
def native_stderr_to(log_path: Path | None) -> Iterator[None]:
    """Point fd 2 (and Python's sys.stderr) at `log_path`, appending, or at /dev/null."""
    global _depth
    with _fd_lock:
        _depth += 1
        if _depth > 1:  # already redirected by an outer call on this process
            try:
                yield
            finally:
                _depth -= 1
            return
        sys.stderr.flush()
        target = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        saved = os.dup(2)
        os.dup2(target, 2)
        os.close(target)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            _depth -= 1


def default_threads() -> int:
    """About one per physical core, as llama.cpp advises: its workers spin while they wait, so
    using every logical CPU (or a busy machine) slows generation down many times over."""
    return max(1, (os.cpu_count() or 2) // 2)


def cpu_has_amx() -> bool:
    """Intel AMX tiles (Sapphire Rapids and later), read from /proc/cpuinfo on Linux."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(line.startswith("flags") and "amx_int8" in line.split() for line in f)
    except OSError:
        return False


@contextlib.contextmanager
def extra_buffer_types(llama_cpp, enabled: bool) -> Iterator[None]:
    """Load with llama.cpp's extra CPU buffer types (AMX, repacked weights) on or off.
    llama-cpp-python's `Llama` does not expose `use_extra_bufts`, so its default model
    parameters are swapped for the length of one load (under the same lock as the fd swap)."""
    if enabled:
        yield
        return
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params

    def params():
        p = original()
        p.use_extra_bufts = False
        return p

    module.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_model_default_params = original


def use_extra_buffers() -> bool:
    """Measured here: on an AMX CPU in a VM, llama.cpp's AMX buffers end every batch of more than
    one token with a general protection fault (a crash, not an error). Without them llama.cpp
    runs the same maths on AVX-512. LOCALFT_LLAMA_EXTRA_BUFFERS=1 turns them back on."""
    override = os.environ.get("LOCALFT_LLAMA_EXTRA_BUFFERS")
    if override is not None:
        return override not in ("", "0")
    return not cpu_has_amx()


def require_llama_cpp():
    # A failed assertion in ggml otherwise attaches gdb to print a backtrace, which hangs a
    # process that has no terminal (the dashboard's workers, the recipe, the tests).
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    try:
        import llama_cpp
    except ImportError:
        raise ExportError("llama-cpp-python is not installed; pip install 'localft[gguf]'") from None
    return llama_cpp


class _UnusedChatFormatter:
    """Stands in for llama-cpp-python's Jinja2ChatFormatter while a model loads. That one compiles
    every chat template in the file, unbounded (jinja folds `'x' * 10**10` at compile time, filling
    memory), and localft never formats through it: templates are rendered by localft.chat.template."""

    def __init__(self, template: str, *args, **kwargs):
        self.template = template

    def to_chat_handler(self):
        def refuse(*args, **kwargs):
            raise ExportError("llama-cpp-python's chat formatting is off in localft; use localft.cli.chat")

        return refuse


_template_lock = threading.Lock()


@contextlib.contextmanager
def no_template_compile() -> Iterator[None]:
    """Load a model without llama-cpp-python compiling the chat templates stored in it."""
    from llama_cpp import llama_chat_format

    with _template_lock:
        real = llama_chat_format.Jinja2ChatFormatter
        llama_chat_format.Jinja2ChatFormatter = _UnusedChatFormatter
        try:
            yield
        finally:
            llama_chat_format.Jinja2ChatFormatter = real


def load_llama(
    gguf: Path,
    *,
    n_ctx: int = 2048,
    logits_all: bool = False,
    log_path: Path | None = None,
    n_threads: int | None = None,
    seed: int = 0,
    lora_path: Path | None = None,
    vocab_only: bool = False,
):
    """A `llama_cpp.Llama` for the file (plus a GGUF LoRA adapter); ExportError when it does not load.
    `vocab_only` reads just the tokenizer (no weights): enough to tokenize."""
    llama_cpp = require_llama_cpp()
    gguf = Path(gguf)
    if not gguf.is_file():
        raise ExportError(f"{gguf} does not exist")
    with open(gguf, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ExportError(f"{gguf} is not a GGUF file")
    with (
        native_stderr_to(log_path),
        extra_buffer_types(llama_cpp, use_extra_buffers()),
        no_template_compile(),
    ):
        try:
            return llama_cpp.Llama(
                model_path=str(gguf),
                n_ctx=n_ctx,
                logits_all=logits_all,
                n_threads=n_threads or default_threads(),
                seed=seed,
                lora_path=str(lora_path) if lora_path else None,
                vocab_only=vocab_only,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            where = f" (llama.cpp's log: {log_path})" if log_path else ""
            raise ExportError(f"{gguf.name} failed to load in llama.cpp: {exc}{where}") from None


def close_llama(llm) -> None:
    """Free the model now; a Llama left to the interpreter's exit prints an error from its destructor."""
    with contextlib.suppress(Exception):
        llm.close()


def next_token_nll(llm, ids: list[int]):
    """The GGUF's negative log-likelihood of each token of `ids` given the ones before it, and the
    token it found most likely at each position (both of length len(ids) - 1): the one reading of
    llama.cpp's logits that verification and evaluation share. `llm` needs logits_all=True."""
    import numpy as np

    llm.reset()
    llm.eval(ids)
    logits = np.asarray(llm.scores[: len(ids) - 1], dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    nll = log_norm - logits[np.arange(len(ids) - 1), np.asarray(ids[1:])]
    return nll, logits.argmax(axis=1)
