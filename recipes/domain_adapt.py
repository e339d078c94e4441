"""domain-adapt: continued pre-training on a folder of your documents (text, Markdown, HTML, PDF):
loss on every token, passages packed; judged by held-out perplexity and a few passages continued."""

from __future__ import annotations

import re
from pathlib import Path

from localft.errors import DataError
from localft.events import Emit, Log, Stage
from localft.recipes.base import Recipe, RecipeInput, holdout_split, write_splits
from localft.run.folder import RunDir

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text", ".rst")
HTML_SUFFIXES = (".html", ".htm")
DOC_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf")
PASSAGE_CHARS = 300  # paragraphs are joined until a passage reaches this; packing fills the rows


def pdf_text(path: Path) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise DataError(f"reading {path.name} needs pypdf: pip install 'localft[docs]'") from None
    try:
        return "\n\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    except (PdfReadError, OSError, ValueError) as exc:
        raise DataError(f"{path.name} is not a readable PDF ({exc})") from None


def document_text(path: Path) -> str:
    """The plain text of one document; DataError when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return pdf_text(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name} cannot be read as UTF-8 text ({exc})") from None
    if suffix in HTML_SUFFIXES:
        from localft.data.html_text import html_to_text

        return html_to_text(raw)
    return raw


def document_paths(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)


def passages(text: str, target: int = PASSAGE_CHARS) -> list[str]:
    """Consecutive paragraphs joined until each passage holds about `target` characters."""
    paragraphs = [re.sub(r"[ \t]+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    out, current = [], ""
    for para in filter(None, paragraphs):
        current = f"{current}\n\n{para}" if current else para
        if len(current) >= target:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def prepare_data(source: Path, run: RunDir, emit: Emit) -> None:
    """Write text rows ({"text": passage}): passages shuffled with the run's seed, some held out."""
    spec = run.read_spec().data
    source = Path(source)
    paths = document_paths(source)
    if not paths:
        raise DataError(
            f"{source} holds no documents ({', '.join(DOC_SUFFIXES)}); pass a folder of your notes"
        )
    emit(Stage("import", 0, 1, f"{len(paths)} documents in {source.name}"))
    rows, skipped = [], []
    for path in paths:
        try:
            found = passages(document_text(path))
        except DataError as exc:
            skipped.append(path.name)
            emit(Log(f"skipped {exc}", "warning"))
            continue
        rows += [{"text": p, "meta": {"source": path.name}} for p in found]
    splits = holdout_split(rows, spec.seed, spec.valid_fraction, spec.test_fraction)
    report = {"source": str(source), "documents": len(paths) - len(skipped), "skipped": skipped,
              "passages": len(rows), "characters": sum(len(r["text"]) for r in rows)}  # fmt: skip
    write_splits(run, splits, report, emit)


RECIPE = Recipe(
    name="domain-adapt",
    summary="Continue pre-training on a folder of your documents (text, Markdown, HTML, PDF) so a model knows its domain.",
    inputs=(
        RecipeInput("--from", "Folder of documents (.txt, .md, .html, .pdf) or one document."),
        RecipeInput("--model", "Base model; default: the largest catalog model that fits.", required=False),
    ),
    task="domain",
    # Text rows train on every token; packing fills each row with passages end to end.
    train_defaults={
        "max_seq_len": 1024, "batch_size": 4, "learning_rate": 1e-4, "epochs": 3, "eval_every": 25,
        "early_stopping_patience": 3, "train_on": "all", "packing": True,
        "data": {"valid_fraction": 0.1, "test_fraction": 0.15},
    },
    cpu_defaults={
        "max_seq_len": 256, "batch_size": 2, "learning_rate": 5e-4, "epochs": 3, "warmup_steps": 3,
        "eval_every": 10, "eval_batches": 2, "save_every": 20,
    },
    export_defaults={"quants": ["Q8_0"], "verify": True, "ollama": True},
    prepare_data=prepare_data,
    eval_samples=4,  # held-out passages continued by each model
    eval_max_tokens=60,
    min_examples=12,
)  # fmt: skip
