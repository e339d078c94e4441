"""The domain-adapt recipe's import: every document format of the sample notes folder read as text,
cut into passages, written as text rows that train on every token."""

import json
from pathlib import Path

import pytest

from localft.config import TrainSpec
from localft.errors import DataError
from localft.eval.overlap import overlap_scores
from localft.recipes.domain_adapt import RECIPE, document_paths, document_text, passages, prepare_data
from localft.run.folder import new_run

NOTES = Path(__file__).resolve().parent.parent / "examples" / "workshop-notes"


def test_each_document_format_reads_as_its_text():
    by_suffix = {p.suffix: p for p in document_paths(NOTES)}
    assert set(by_suffix) == {".md", ".txt", ".html", ".pdf"}
    for suffix, path in by_suffix.items():
        text = document_text(path)
        assert "Otter cargo bike" in text, suffix
        assert "<p>" not in text and "/Helvetica" not in text, suffix
    pdf = document_text(by_suffix[".pdf"])
    assert "Lantern loom" in pdf and "every 6,000 km" in pdf  # pypdf read the page's text


def test_a_broken_pdf_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "good.md").write_text("\n\n".join(["A paragraph about the Keelson fork."] * 40))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    with pytest.raises(DataError, match="broken.pdf"):
        document_text(tmp_path / "broken.pdf")
    run = new_run(TrainSpec(), name="domain")
    events = []
    prepare_data(tmp_path, run, events.append)
    report = json.loads((run.data_dir / "report.json").read_text())
    assert report["skipped"] == ["broken.pdf"] and report["documents"] == 1
    assert any("broken.pdf" in getattr(e, "message", "") for e in events)


def test_passages_join_paragraphs_up_to_the_target():
    text = "\n\n".join(f"Paragraph {i} " + "word " * 15 for i in range(10))
    found = passages(text, target=200)
    assert all(len(p) >= 200 for p in found[:-1])
    assert " ".join(found).split() == text.split()  # nothing lost, order kept


def test_import_writes_text_rows_that_train_on_every_token():
    run = new_run(TrainSpec(), name="domain")
    prepare_data(NOTES, run, lambda _e: None)
    rows = {
        s: [json.loads(x) for x in run.split_path(s).read_text().splitlines()]
        for s in ("train", "valid", "test")
    }
    assert all(set(r) == {"text", "meta"} for part in rows.values() for r in part)
    assert sum(map(len, rows.values())) >= RECIPE.min_examples and rows["test"] and rows["valid"]
    assert RECIPE.train_defaults["train_on"] == "all" and RECIPE.train_defaults["packing"]
    report = json.loads((run.data_dir / "report.json").read_text())
    assert report["documents"] == 8 and report["skipped"] == []


def test_overlap_scores_come_from_rouge_and_sacrebleu():
    same = overlap_scores(["the chain needs dry wax every 900 km"], ["the chain needs dry wax every 900 km"])
    assert same["rouge_l"] == pytest.approx(1.0) and same["bleu"] == pytest.approx(100.0)
    apart = overlap_scores(["completely unrelated words here"], ["the chain needs dry wax every 900 km"])
    assert apart["rouge_l"] == 0.0 and apart["bleu"] < 1.0
