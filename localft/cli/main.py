"""The `localft` command. Every subcommand is a thin face over functions the dashboard uses too."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import typer

from localft.errors import LocalftError

app = typer.Typer(
    help="Fine-tune a small language model on your own posts, locally. Run with no command for the dashboard.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        from localft.tui.app import run_dashboard

        run_dashboard()


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """What this machine is: OS, CPU, memory, GPUs, which backends can run, package versions."""
    from localft.cli.doctor import doctor_report, format_doctor

    report = doctor_report()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_doctor(report)))


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
    local: bool = typer.Option(
        False, "--local", help="The GGUF models already in Ollama's store and LM Studio's models folder."
    ),
) -> None:
    """The model catalog: recommended bases, their size and the memory a LoRA / QLoRA run needs."""
    from dataclasses import asdict

    if local:
        from localft.cli.local_models import print_local_models

        print_local_models(as_json)
        return

    from localft.disk import fmt_bytes
    from localft.plan.catalog import CATALOG
    from localft.plan.memory import catalog_memory

    rows = [(m, catalog_memory(m)) for m in CATALOG]
    if as_json:
        print(json.dumps([asdict(m) | {"params": m.params, "memory": mem} for m, mem in rows], indent=2))
        return
    print(
        "memory: a CUDA run of 1 x 1024 tokens with gradient checkpointing, LoRA rank 8 (bf16) or QLoRA (NF4)"
    )
    print(f"{'name':<13} {'params':>6} {'LoRA':>9} {'QLoRA':>9}  {'full-precision id':<35} {'MLX 4-bit id'}")
    for m, mem in rows:
        print(f"{m.name:<13} {m.size:>6} {fmt_bytes(mem['lora_bf16']):>9} {fmt_bytes(mem['qlora_4bit']):>9}  "
              f"{m.hf_id:<35} {m.mlx_id or '-'}")  # fmt: skip
        if m.notes:
            print(f"{'':<15}{m.notes}")


def _register_subcommands() -> None:
    from localft.cli.chat import chat_command
    from localft.cli.data import app as data_app
    from localft.cli.eval import eval_command
    from localft.cli.export import export_command
    from localft.cli.train import merge_command, runs_app, train_command
    from localft.recipes.commands import app as recipe_app
    from localft.recipes.commands import demo_command

    app.add_typer(data_app, name="data")
    app.command("train")(train_command)
    app.add_typer(runs_app, name="runs")
    app.command("merge")(merge_command)
    app.command("export")(export_command)
    app.command("chat")(chat_command)
    app.command("eval")(eval_command)
    app.add_typer(recipe_app, name="recipe")
    app.command("demo")(demo_command)


_register_subcommands()


# typer 0.29+ vendors its own click; catch both families so usage errors stay one line.
CLICK_ERRORS = (click.ClickException, getattr(typer, "TyperException", click.ClickException))
ABORTS = (click.Abort, typer.Abort, KeyboardInterrupt)


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def command_stage(argv: list[str]) -> str:
    """The subcommand words of `argv` ("data import", "recipe run"), to name where a bug struck."""
    words = [a for a in argv if not a.startswith("-")][:2]
    group = words[:1]
    if group and group[0] in ("data", "runs", "recipe") and len(words) > 1:
        return " ".join(words)
    return " ".join(group) or "dashboard"


def log_internal_error(exc: BaseException, stage: str) -> Path | None:
    """Write the traceback of an unexpected exception to LOCALFT_HOME/logs/; the file, or None
    where no log can be written (then the traceback goes to stderr after the one line)."""
    import time
    import traceback

    from localft.paths import localft_home

    folder = localft_home() / "logs"
    path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"localft {stage}: {' '.join(sys.argv)}\n")
            traceback.print_exception(exc, file=f)
    except OSError:
        return None
    return path


def internal_error(exc: BaseException, stage: str) -> None:
    """A bug, not a user error: one line naming the stage and the log, exit code 1.
    LOCALFT_DEBUG=1 re-raises it with its traceback instead."""
    if os.environ.get("LOCALFT_DEBUG", "") not in ("", "0"):
        raise exc
    log = log_internal_error(exc, stage)
    message = str(exc).splitlines()[0] if str(exc) else ""
    where = f"details in {log}" if log else "no log could be written"
    print(f"error: internal error in {stage}: {type(exc).__name__}: {message}; {where}", file=sys.stderr)
    if log is None:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the program itself (tests calling main(args) keep their own warning filters)
        from localft.library_logs import route_library_output
        from localft.paths import localft_home

        route_library_output(localft_home() / "logs" / "libraries.log")
    try:
        result = app(args=args, standalone_mode=False, prog_name="localft")
    except LocalftError as exc:
        fail(str(exc))
    except CLICK_ERRORS as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called bare: show its help
            print(ctx.get_help() if ctx else exc.format_message())
            raise SystemExit(0) from None
        cmd = ctx.command_path if ctx else "localft"
        fail(f"{exc.format_message()} (see `{cmd} --help`)")
    except ABORTS:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:
        from localft.disk import user_os_error

        if (user_error := user_os_error(exc)) is not None:
            fail(str(user_error))
        internal_error(exc, command_stage(args))
    if isinstance(result, int) and result:
        raise SystemExit(result)


if __name__ == "__main__":  # python -m localft.cli.main, where the console script is not on PATH
    main()
