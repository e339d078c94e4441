"""`localft export RUN_OR_MODEL_DIR`: merge (a run, through the core) -> convert -> quantize -> verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from localft.chat.session import gguf_reply
from localft.config import ExportSpec, build_spec, field_help
from localft.errors import ExportError, RunError

_HELP = field_help(ExportSpec)


def _resolve_target(target: str):
    """("run", RunDir) or ("folder", Path) for a run id/path, an HF folder, or a model name."""
    from localft.paths import runs_dir
    from localft.plan.catalog import catalog_entry, check_model_folder, resolve_model
    from localft.run.folder import RunDir, open_run

    path = Path(target).expanduser()
    if (path / "spec.json").is_file():
        return "run", RunDir(path)
    if (path / "config.json").is_file():
        return "folder", check_model_folder(path)
    if (runs_dir() / target / "spec.json").is_file():
        return "run", RunDir(runs_dir() / target)
    if catalog_entry(target) is not None:  # a model name, though runs are named after models too
        return "folder", resolve_model(target)
    try:
        return "run", open_run(target)
    except RunError:
        return "folder", resolve_model(target)


def print_report(report, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from localft.disk import fmt_bytes
    from localft.export.verify import target_text

    table = Table(title=f"GGUF export: {report.name} -> {report.out_dir}", title_justify="left")
    for col in (
        "type",
        "size",
        "tokens",
        "top-1 (95%)",
        "ppl HF",
        "ppl GGUF",
        "Δppl (95%)",
        "stops",
        "target",
    ):
        # Wrapping allowed: a table of unbreakable columns wider than the console is not drawn at all.
        table.add_column(col, justify="left" if col == "type" else "right", no_wrap=col == "type")
    for f in report.files:
        p, s = f.parity or {}, f.stop_check or {}
        verdict = (
            {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "reported"}[p.get("passed")]
            if p
            else "-"
        )
        top1, ppl = p.get("top1_interval"), p.get("ppl_change_interval")
        table.add_row(
            f.quant,
            fmt_bytes(f.bytes),
            str(p.get("tokens", "-")) if p else "-",
            (f"{p['top1']:.1%}" + (f" ({top1[0]:.1%}-{top1[1]:.1%})".replace("%-", "-") if top1 else ""))
            if p
            else "-",
            f"{p['ppl_hf']:.4f}" if p.get("ppl_hf") is not None else "-",
            f"{p['ppl_gguf']:.4f}" if p.get("ppl_gguf") is not None else "-",
            (f"{p['ppl_change']:+.2%}" + (f" ({ppl[0]:+.1%}..{ppl[1]:+.1%})" if ppl else "")) if p else "-",
            ("yes" if s.get("stopped") else "[red]no[/red]" if not s.get("passed") else "no, as HF")
            if s
            else "-",
            f"{verdict} ({target_text(p.get('quant', f.quant))})" if p else verdict,
        )
    console.print(table)
    for f in report.files:
        if shift := (f.parity or {}).get("vs_f16_base"):
            console.print(
                f"{f.quant}: the quantized base moves perplexity {shift['ppl_shift']:+.2%} and top-1 "
                f"{shift['top1_shift']:+.1%} from the same adapter on an F16 copy of it (made to measure, not kept)"
            )
    for f in report.files:
        if (f.parity or {}).get("tokenization_diff"):
            console.print(f"[red]{f.quant}: {escape(f.parity['tokenization_diff'])}[/red]", highlight=False)
    if report.verify_text:
        console.print(f"verified on {report.verify_text}")
    if report.stop_check:
        console.print(f"chat check: {report.stop_check['prompt']!r} -> {report.stop_check['gguf_text']!r}")
    for label, value in (
        ("Modelfile", report.modelfile),
        ("LM Studio", report.lmstudio_dir),
        ("adapter", report.adapter),
    ):
        if value:
            console.print(f"{label}: {value}")
    console.print(f"report: {Path(report.out_dir) / 'export.json'}  ({report.seconds:.0f} s)")


def export_command(
    target: Annotated[str, typer.Argument(help="A run (id or path), an HF model folder, or a model name.")],
    quant: Annotated[
        list[str] | None, typer.Option("--quant", "-q", help=_HELP["quants"] + " Repeat for several.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: a run's gguf/, else MODEL-gguf)."),
    ] = None,
    verify: Annotated[bool | None, typer.Option("--verify/--no-verify", help=_HELP["verify"])] = None,
    ollama: Annotated[bool | None, typer.Option("--ollama/--no-ollama", help=_HELP["ollama"])] = None,
    lmstudio: Annotated[bool | None, typer.Option("--lmstudio/--no-lmstudio", help=_HELP["lmstudio"])] = None,
    adapter: Annotated[
        bool | None, typer.Option("--adapter/--no-adapter", help=_HELP["adapter_gguf"])
    ] = None,
    adapter_only: Annotated[
        bool | None, typer.Option("--adapter-only/--merged", help=_HELP["adapter_only"])
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help=_HELP["name"])] = None,
) -> None:
    """Merge, convert to GGUF, quantize and verify against the HF model; write a Modelfile."""
    from rich.console import Console

    console = Console()
    given = dict(quants=quant, verify=verify, ollama=ollama, lmstudio=lmstudio, adapter_gguf=adapter)
    given |= dict(name=name, adapter_only=adapter_only)
    spec = build_spec(ExportSpec, {k: v for k, v in given.items() if v is not None}, where="export options")
    from localft.cli.progress import stage_bars
    from localft.export.pipeline import export_folder
    from localft.run.export import export_run

    kind, where = _resolve_target(target)
    with stage_bars() as emit:  # an error is printed once, by `localft`'s main
        if kind == "run":  # --out or not, a run's export: its held-out text, system prompt, adapter-only
            report = export_run(where, spec, emit=emit, out_dir=out)
        else:
            folder_out = out or Path.cwd() / f"{Path(where).name}-gguf"
            report = export_folder(where, folder_out, spec, emit=emit, chat_reply=gguf_reply)
    print_report(report, console)
    if not report.ok:  # a verification miss is the file's, not a bug: one error line, exit 2
        raise ExportError(
            f"{verification_miss(report)}; the files are kept in {report.out_dir} for inspection"
        )


def verification_miss(report) -> str:
    """One line naming the first file that missed and how."""
    for f in report.files:
        if (f.parity or {}).get("problem"):
            return f.parity["problem"]
        if f.stop_check and not f.stop_check.get("passed"):
            return f"{f.quant} does not end its turn where the HF model does (no end-of-turn token)"
    return "verification missed a target (see the table)"
