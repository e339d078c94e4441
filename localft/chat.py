"""`localft chat`: streaming chat with a GGUF through llama.cpp, using the chat template inside the file.

`ChatSession` is the reusable part (the dashboard streams from it in a worker thread).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from localft.errors import ExportError, LocalftError, RunError

QUANT_PREFERENCE = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "Q3_K_M", "Q2_K", "F16", "BF16", "F32")


def render_chat(
    template: str, messages: list[dict], *, bos: str = "", eos: str = "", add_generation_prompt=True
) -> str:
    """Render a chat template the way transformers does, in a sandbox bounded in time and size."""
    from jinja2 import TemplateError

    from localft.chat_template import render_bounded

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


@dataclass
class GenerationStats:
    tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = ""  # "stop" (end-of-turn token), "length", or "interrupted"

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class ChatSession:
    """A conversation with one GGUF. `stream()` yields text pieces as llama.cpp produces them."""

    def __init__(
        self,
        gguf_path: Path,
        *,
        system: str | None = None,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 512,
        n_ctx: int = 4096,
        seed: int = 0,
        log_path: Path | None = None,
        allow_foreign: bool = False,
        n_threads: int | None = None,
    ):
        from localft.export.gguf import LOCALFT_KEY
        from localft.export.llamacpp import load_llama

        self.path = Path(gguf_path)
        self.llm = load_llama(self.path, n_ctx=n_ctx, log_path=log_path, seed=seed, n_threads=n_threads)
        self.log_path = log_path
        meta = self.llm.metadata
        if not allow_foreign and LOCALFT_KEY not in meta:
            self.close()
            raise ExportError(f"{self.path.name} was not made by localft; pass --any-gguf to load it anyway")
        self.template = meta.get("tokenizer.chat_template")
        if not self.template:
            self.close()
            raise ExportError(f"{self.path.name} has no chat template; re-export it from a folder with one")
        self.bos_id, self.eos_id = self.llm.token_bos(), self.llm.token_eos()
        self.bos = self.llm.detokenize([self.bos_id], special=True).decode() if self.bos_id >= 0 else ""
        self.eos = self.llm.detokenize([self.eos_id], special=True).decode() if self.eos_id >= 0 else ""
        self.add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self.system, self.temperature, self.top_p, self.max_tokens = system, temperature, top_p, max_tokens
        self.seed = seed
        self.messages: list[dict] = []
        self.last = GenerationStats()
        self._stop = threading.Event()

    def conversation(self) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages

    def prompt_tokens(self, messages: list[dict] | None = None) -> list[int]:
        text = render_chat(self.template, messages or self.conversation(), bos=self.bos, eos=self.eos)
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self.add_bos and (not tokens or tokens[0] != self.bos_id):
            tokens.insert(0, self.bos_id)
        return tokens

    def stream(self, user_text: str) -> Iterator[str]:
        """Add the user turn, yield the reply piece by piece, and keep it in the history."""
        from localft.export.llamacpp import native_stderr_to

        self._stop.clear()
        self.messages.append({"role": "user", "content": user_text})
        tokens = self.prompt_tokens()
        if len(tokens) + 1 >= self.llm.n_ctx():
            self.messages.pop()
            raise ExportError("the conversation no longer fits the context window; /reset to start over")
        reply, stats = [], GenerationStats(finish_reason="length")
        start = time.perf_counter()
        pieces = self.llm.create_completion(
            tokens,
            max_tokens=min(self.max_tokens, self.llm.n_ctx() - len(tokens)),
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stream=True,
        )
        while True:
            # Redirect only around llama.cpp's own work, never across a yield to the caller.
            with native_stderr_to(self.log_path):
                chunk = next(pieces, None)
            if chunk is None:
                break
            choice = chunk["choices"][0]
            if choice["text"]:
                stats.tokens += 1
                reply.append(choice["text"])
                yield choice["text"]
            if choice.get("finish_reason"):
                stats.finish_reason = choice["finish_reason"]
            if self._stop.is_set():
                stats.finish_reason = "interrupted"
                pieces.close()
                break
        stats.seconds = time.perf_counter() - start
        self.last = stats
        self.messages.append({"role": "assistant", "content": "".join(reply)})

    def reply(self, user_text: str) -> str:
        return "".join(self.stream(user_text))

    def reset(self) -> None:
        self.messages = []

    def stop(self) -> None:
        """Ask a running `stream()` to end after the current piece (safe from another thread)."""
        self._stop.set()

    def save(self, path: Path) -> Path:
        from localft.runs import atomic_write_json

        atomic_write_json(Path(path), {"model": str(self.path), "messages": self.conversation()})
        return Path(path)

    def close(self) -> None:
        from localft.export.llamacpp import close_llama

        close_llama(self.llm)


def find_gguf(ref: str) -> Path:
    """A .gguf path as given, or the preferred GGUF of a run (by quant, most useful first)."""
    path = Path(ref)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ExportError(f"{path} does not exist")
        return path
    from localft.runs import open_run

    folder = path if path.is_dir() and not (path / "spec.json").is_file() else open_run(ref).gguf_dir
    found = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    for quant in QUANT_PREFERENCE:
        for f in found:
            if f.stem.endswith(f"-{quant}"):
                return f
    if found:
        return found[0]
    raise RunError(f"no GGUF in {folder}; run `localft export {ref}` first")


def _repl(session: ChatSession, base: ChatSession | None, console) -> None:
    console.print(f"[dim]{session.path.name} — /reset, /system TEXT, /save FILE, /quit[/dim]")
    while True:
        try:
            line = console.input("[bold]> [/bold]")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not line.strip():
            continue
        cmd, _, arg = line.strip().partition(" ")
        if cmd in ("/quit", "/exit"):
            return
        if cmd == "/reset":
            for s in filter(None, (session, base)):
                s.reset()
            console.print("[dim]history cleared[/dim]")
            continue
        if cmd == "/system":
            for s in filter(None, (session, base)):
                s.system = arg or None
            console.print(f"[dim]system prompt {'set' if arg else 'cleared'}[/dim]")
            continue
        if cmd == "/save":
            out = session.save(Path(arg or "chat.json"))
            console.print(f"[dim]saved {out}[/dim]")
            continue
        for label, s in (("tuned", session), ("base", base)):
            if s is None:
                continue
            if base is not None:
                console.print(f"[bold cyan]{label}:[/bold cyan]")
            try:
                for piece in s.stream(line):
                    console.print(piece, end="", markup=False, highlight=False)
            except KeyboardInterrupt:
                s.stop()
            console.print(f"\n[dim]{s.last.tokens} tokens, {s.last.tok_per_s:.1f} tok/s[/dim]")


def chat_command(
    target: Annotated[str, typer.Argument(help="A .gguf file, or a run (id or path) whose GGUF to use.")],
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.7,
    top_p: Annotated[
        float, typer.Option(help="Nucleus sampling: keep the top tokens up to this probability.")
    ] = 0.95,
    max_tokens: Annotated[int, typer.Option(help="Longest reply in tokens.")] = 512,
    compare: Annotated[
        str | None, typer.Option("--compare", help="A base GGUF whose answer is shown beside the tuned one.")
    ] = None,
    any_gguf: Annotated[
        bool, typer.Option("--any-gguf", help="Also load GGUF files not made by localft.")
    ] = False,
) -> None:
    """Chat with a GGUF through llama.cpp (streaming; /reset, /system, /save)."""
    from rich.console import Console

    console = Console()
    session = base = None
    try:
        kw = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, allow_foreign=any_gguf)
        if system is None and Path(target).suffix != ".gguf":
            system = _run_system_prompt(target)
        session = ChatSession(find_gguf(target), system=system, **kw)
        if compare:
            base = ChatSession(find_gguf(compare), system=system, **kw)
        _repl(session, base, console)
    except LocalftError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    finally:
        for s in filter(None, (session, base)):
            s.close()


def _run_system_prompt(ref: str) -> str | None:
    """The system prompt the run trained with, read from its export report or its data."""
    from localft.runs import open_run

    try:
        run = open_run(ref)
    except RunError:
        return None
    report = run.gguf_dir / "export.json"
    if report.is_file():
        return json.loads(report.read_text(encoding="utf-8")).get("system_prompt")
    return None
