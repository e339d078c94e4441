"""`localft chat`: streaming chat with a GGUF through llama.cpp in the terminal (/reset, /system,
/save). The session itself is localft.chat.session's, which the dashboard's Chat screen uses too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from localft.chat.run_chat import ChatModel, run_chat_model, run_chat_spec, run_gguf
from localft.chat.session import ChatSession
from localft.config import ChatSpec, field_help
from localft.errors import ExportError, RunError

_HELP = field_help(ChatSpec)


def find_chat_model(ref: str) -> ChatModel:
    """What `ref` names to chat with: a .gguf file, a folder's preferred GGUF, or a run's exported
    model (a merged GGUF, or the user's base file plus the run's adapter.gguf)."""
    path = Path(ref)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ExportError(f"{path} does not exist")
        return ChatModel(path)
    from localft.run.folder import open_run

    if path.is_dir() and not (path / "spec.json").is_file():
        found = run_gguf(path)
        if found is None:
            raise RunError(f"no GGUF in {path}")
        return ChatModel(found)
    run = open_run(ref)
    model = run_chat_model(run)
    if model is None:
        raise RunError(f"no GGUF in {run.gguf_dir}; run `localft export {ref}` first")
    return model


def _repl(session: ChatSession, base: ChatSession | None, console, feedback=None) -> None:
    console.print(f"[dim]{session.name} — /reset, /system TEXT, /save FILE, /quit[/dim]")
    if feedback is not None and feedback.log is not None:
        from localft.chat.feedback import COMMANDS_HELP, feedback_counts

        counts = feedback_counts(feedback.log.path.parent)
        console.print(
            f"[dim]feedback: {COMMANDS_HELP} — kept in {feedback.log.path} ({counts.describe()})[/dim]"
        )
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
        if (
            feedback is not None
            and cmd.startswith("/")
            and _feedback_command(feedback, cmd, arg, line, console)
        ):
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


def _feedback_command(feedback, cmd: str, arg: str, line: str, console) -> bool:
    """A feedback command (/good, /bad, /edit, /pick, /two); False when `line` is not one."""
    from localft.chat.feedback import FeedbackError

    try:
        if cmd == "/two":
            if not arg.strip():
                raise FeedbackError("write the request: /two TEXT")
            for index in (0, 1):
                console.print(f"[bold cyan]draft {index + 1}:[/bold cyan]")
                for piece in feedback.stream_draft(arg, index):
                    console.print(piece, end="", markup=False, highlight=False)
                console.print()
            console.print("[dim]/pick 1 or /pick 2 keeps one (the other becomes its rejected answer)[/dim]")
            return True
        said = feedback.command(line)
    except FeedbackError as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        return True
    if said is None:
        return False
    console.print(f"[dim]{said}[/dim]")
    return True


def chat_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A .gguf file, or a run (id or path): its GGUF, or its adapter on your Ollama / LM Studio model."
        ),
    ],
    system: Annotated[str | None, typer.Option("--system", "-s", help=_HELP["system"])] = None,
    temperature: Annotated[float | None, typer.Option(help=_HELP["temperature"])] = None,
    top_p: Annotated[float | None, typer.Option(help=_HELP["top_p"])] = None,
    max_tokens: Annotated[int | None, typer.Option(help=_HELP["max_tokens"])] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare", help="A base GGUF (or another run) whose answer is shown beside the tuned one."
        ),
    ] = None,
    any_gguf: Annotated[
        bool, typer.Option("--any-gguf", help="Also load GGUF files not made by localft.")
    ] = False,
) -> None:
    """Chat with a GGUF through llama.cpp (streaming; /reset, /system, /save). Chatting with a run
    also takes feedback for its next training round: /good, /bad, /two TEXT + /pick N, /edit TEXT."""
    from rich.console import Console

    from localft.chat.feedback import ChatFeedback, FeedbackLog, feedback_path

    run = _run_of(target)
    spec = run_chat_spec(run, system=system, temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    session = base = None
    try:
        session = find_chat_model(target).open(spec, allow_foreign=any_gguf)
        if compare:
            base = find_chat_model(compare).open(spec, allow_foreign=any_gguf)
        log = FeedbackLog(feedback_path(run.path)) if run is not None else None
        _repl(session, base, Console(), ChatFeedback(session, log))
    finally:  # an error is printed once, by `localft`'s main
        for s in filter(None, (session, base)):
            s.close()


def _run_of(ref: str):
    """The run `ref` names, or None for a GGUF file or a folder of them."""
    from localft.run.folder import open_run

    if Path(ref).suffix == ".gguf":
        return None
    try:
        return open_run(ref)
    except RunError:
        return None
