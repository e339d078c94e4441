"""The data report warns about format debris left in kept posts (one test per kind), `data import` and
`data inspect` print it; labelled CSVs with other column names get a one-line error naming the columns."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from examples.linkedin_quirk import linkedin_commentary
from examples.meta_escapes import meta_json
from localft.cli.main import main
from localft.config import DataSpec
from localft.data.dataset import build_dataset
from localft.data.load import import_posts
from localft.data.report import format_report
from localft.errors import DataError
from localft.recipes.classify import read_labelled

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "linkedin-export.zip"
POSTS = [
    "Our nightly job failed at 02:14.\nNobody got paged.\nNobody needed to.\n\nWhy? Three boring decisions.",
    "Small pull requests get reviews.\nBig ones get a thumbs up.\nPick small.",
    "Rain, six degrees, headwind.\nStill the best part of my day.\n\nWhere do you think best?",
    "One line only, and long enough to be kept by the length filter.",
]


def _table(path: Path, texts: list[str]) -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(
        [["date", "text"], *[[f"2025-0{i + 1}-01", t] for i, t in enumerate(texts)]]
    )
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _residue(tmp_path: Path, source: Path) -> dict[str, dict]:
    report = build_dataset(source, DataSpec(), tmp_path / "out")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["residue"] == report.residue
    return {item["kind"]: item for item in report.residue}


def test_a_clean_export_has_no_warning(tmp_path):
    assert _residue(tmp_path, DEMO) == {}  # the demo: quotes in its posts are the author's own


def test_linkedin_quotes_left_in_place_are_two_warnings(tmp_path):
    """LinkedIn's per-line quotes read as a plain CSV (an importer that does not undo them)."""
    found = _residue(tmp_path, _table(tmp_path / "posts.csv", [linkedin_commentary(t) for t in POSTS]))
    assert found["quote-only lines"]["posts"] == 2  # the empty inner lines read `""`
    assert '⏎ "" ⏎' in found["quote-only lines"]["example"]
    assert found["quote-wrapped lines"]["posts"] == 3  # every multi-line post
    assert '02:14."' in found["quote-wrapped lines"]["example"]


def test_a_few_quoted_lines_are_writing_not_debris(tmp_path):
    texts = ['He said "ship it"\n"Ship what?" I asked.\nNobody knew.', *POSTS[1:]]
    assert "quote-wrapped lines" not in _residue(tmp_path, _table(tmp_path / "posts.csv", texts))


def test_html_tags_and_entities_are_a_warning(tmp_path):
    texts = [*POSTS[:3], "<p>Copied from a blog &amp; pasted as HTML, tags and all.</p>"]
    found = _residue(tmp_path, _table(tmp_path / "posts.csv", texts))
    assert found["html"]["posts"] == 1 and "<p>Copied" in found["html"]["example"]


def test_mojibake_is_a_warning(tmp_path):
    """Meta's escaped JSON read as a generic JSON file keeps "GÃ¶teborg" for "Göteborg"."""
    rows = json.loads(
        meta_json([{"text": t} for t in [*POSTS[:3], "Fika at ten in Göteborg, naïve café talk."]])
    )
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = _residue(tmp_path, path)
    assert found["mojibake"]["posts"] == 1  # the other posts are ASCII, which the escaping leaves alone
    assert "GÃ¶teborg" in found["mojibake"]["example"]


def test_import_and_inspect_print_the_warning(tmp_path, capsys):
    source = _table(tmp_path / "posts.csv", [linkedin_commentary(t) for t in POSTS])
    out = tmp_path / "data"
    try:
        main(["data", "import", str(source), "-o", str(out)])
    except SystemExit as exit:
        assert exit.code in (0, None)
    printed = capsys.readouterr().out
    assert "warning  2 posts with a line that is only quotes" in printed
    assert "check these posts before training" in printed
    try:
        main(["data", "inspect", str(out)])
    except SystemExit as exit:
        assert exit.code in (0, None)
    assert "warning  3 posts whose lines start or end with a quote" in capsys.readouterr().out
    assert "warning" not in format_report(build_dataset(DEMO, DataSpec(), tmp_path / "demo"))


@pytest.mark.parametrize(
    "lines",
    [
        ["category,text_body", "spam,Win a prize now", "ham,Lunch at noon?"],
        [
            "category,,text_body,",
            "spam,,Win a prize now,",
            "ham,,Lunch at noon?,,",
        ],  # blank columns, stray commas
    ],
)
def test_labelled_csv_with_other_columns_names_them_and_the_option(tmp_path, lines):
    path = tmp_path / "labelled.csv"
    path.write_text("\n".join(lines) + "\n")
    for read in (lambda: read_labelled(path), lambda: import_posts(path, DataSpec())):
        with pytest.raises(DataError) as error:
            read()
        message = str(error.value)
        assert "\n" not in message and "(columns: category, text_body)" in message
        assert "--set data.text_column=NAME" in message
    assert read_labelled(path, "text_body") == [("Win a prize now", "spam"), ("Lunch at noon?", "ham")]


def test_label_message_csv_reads_and_trailing_commas_follow_the_header(tmp_path):
    path = tmp_path / "sms.csv"
    path.write_text("label,message,,\nspam,Win a prize now,,\nham,Lunch at noon?,,,\n")
    assert read_labelled(path) == [("Win a prize now", "spam"), ("Lunch at noon?", "ham")]
    posts = import_posts(path, DataSpec(min_chars=0))
    assert [p.text for p in posts.posts] == ["Win a prize now", "Lunch at noon?"]
