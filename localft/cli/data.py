"""`localft data import|inspect`: build chat JSONL from an export, and show a data report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer

from localft.config import DataSpec, build_spec, field_help
from localft.errors import ConfigError, DataError

app = typer.Typer(
    help="Import exports and prepared datasets into chat JSONL, and inspect them.", no_args_is_help=True
)
HELP = field_help(DataSpec)


def _spec(**options) -> DataSpec:
    """A DataSpec from the options the user actually gave; every default stays in DataSpec."""
    return build_spec(DataSpec, {k: v for k, v in options.items() if v is not None}, where="data options")


def _tokenizer(model: str | None) -> Path | None:
    if model is None:
        return None
    from localft.plan.catalog import resolve_model

    return resolve_model(model)


@app.command("import")
def import_command(
    sources: list[Path] = typer.Argument(
        ...,
        help="Export archive (zip, tar.gz), extracted folder, or JSONL/CSV/text file; several are merged "
        "into one dataset, deduplicated across them.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for train/valid/test.jsonl and report.json."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model whose tokenizer and chat template give token statistics."
    ),
    max_seq_len: int | None = typer.Option(
        None, help="Count examples longer than this many tokens (with --model)."
    ),
    train_on: str = typer.Option(
        "completions", "--train-on", help="Token statistics as trained: completions (assistant turns) or all."
    ),
    format: str | None = typer.Option(None, "--format", "-f", help=HELP["format"]),
    text_column: str | None = typer.Option(None, help=HELP["text_column"]),
    scrub_pii: bool | None = typer.Option(None, "--scrub-pii/--no-scrub-pii", help=HELP["scrub_pii"]),
    scrub_handles: bool | None = typer.Option(
        None, "--scrub-handles/--keep-handles", help=HELP["scrub_handles"]
    ),
    urls: str | None = typer.Option(None, help=HELP["urls"] + " keep, strip or placeholder."),
    dedup: bool | None = typer.Option(None, "--dedup/--no-dedup", help=HELP["dedup"]),
    near_dup_threshold: float | None = typer.Option(None, help=HELP["near_dup_threshold"]),
    min_chars: int | None = typer.Option(None, help=HELP["min_chars"]),
    max_chars: int | None = typer.Option(None, help=HELP["max_chars"]),
    language: str | None = typer.Option(None, help=HELP["language"]),
    include_replies: bool | None = typer.Option(
        None, "--include-replies/--no-replies", help=HELP["include_replies"]
    ),
    join_threads: bool | None = typer.Option(
        None, "--join-threads/--split-threads", help=HELP["join_threads"]
    ),
    include_private: bool | None = typer.Option(
        None, "--include-private/--public-only", help=HELP["include_private"]
    ),
    prompts: str | None = typer.Option(None, help=HELP["prompts"] + " keywords or model."),
    prompt_model: str | None = typer.Option(None, help=HELP["prompt_model"]),
    system_prompt: str | None = typer.Option(None, help=HELP["system_prompt"]),
    author: str | None = typer.Option(None, help=HELP["author"]),
    valid_fraction: float | None = typer.Option(None, help=HELP["valid_fraction"]),
    test_fraction: float | None = typer.Option(None, help=HELP["test_fraction"]),
    seed: int | None = typer.Option(None, help=HELP["seed"]),
) -> None:
    """Read one export or several, clean them, and write chat JSONL splits plus a data report."""
    from localft.data.dataset import build_dataset
    from localft.data.report import format_report

    options = dict(locals())
    for key in ("sources", "out", "model", "max_seq_len", "train_on", "build_dataset", "format_report"):
        options.pop(key, None)
    if train_on not in ("completions", "all"):
        raise ConfigError(f"--train-on is completions or all, not {train_on!r}")
    spec = _spec(**options)
    report = build_dataset(
        sources, spec, out, tokenizer_dir=_tokenizer(model), max_seq_len=max_seq_len, train_on=train_on
    )
    typer.echo(format_report(report))
    typer.echo(f"wrote {out}/train.jsonl, valid.jsonl, test.jsonl and report.json")


@app.command("inspect")
def inspect_command(
    path: Path = typer.Argument(
        ..., help="A data folder (with report.json), a run, or an export to dry-run."
    ),
    samples: int = typer.Option(3, help="How many examples to show."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Tokenizer for token statistics when dry-running an export."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Print the data report: counts per source and filter, token statistics, length histogram, samples."""
    from localft.data.report import format_report

    report = _load_report(path, model)
    typer.echo(
        json.dumps(report, indent=2, ensure_ascii=False)
        if as_json
        else format_report(report, samples=samples)
    )


def _is_report(data) -> bool:
    from localft.data.report import DataReport

    if not isinstance(data, dict) or not isinstance(data.get("splits"), dict):
        return False
    try:
        DataReport.from_dict(data)
    except TypeError:  # fields missing
        return False
    return True


def _load_report(path: Path, model: str | None) -> dict:
    for candidate in (path / "report.json", path / "data" / "report.json"):
        if candidate.is_file():
            try:
                report = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as exc:  # unreadable, not JSON, nested too deep
                raise DataError(
                    f"{candidate} cannot be read ({exc}); run `localft data import` again"
                ) from None
            if not _is_report(report):
                raise DataError(f"{candidate} is not a localft data report; run `localft data import` again")
            return report
    if not path.exists():
        from localft.run.folder import open_run

        run = open_run(str(path))  # a run id or name
        if not (run.data_dir / "report.json").is_file():
            raise DataError(f"run {run.id} has no data report yet; import its data first")
        return _load_report(run.data_dir, model)
    from localft.data.dataset import build_dataset

    with tempfile.TemporaryDirectory(prefix="localft-inspect-") as tmp:
        return build_dataset(path, DataSpec(), Path(tmp), tokenizer_dir=_tokenizer(model)).to_dict()
