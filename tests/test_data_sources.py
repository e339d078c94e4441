"""Several exports at once: `localft data import A B ...` and `recipe run --from A --from B` merge one person's
platforms into one dataset, deduplicated across them, with the platform in each request and counts per source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localft.cli.main import main
from localft.config import DataSpec
from localft.data.dataset import build_dataset
from localft.data.report import format_report

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
SOURCES = [EXPORTS / "linkedin-small", EXPORTS / "facebook-export", EXPORTS / "threads-export",
           EXPORTS / "bluesky" / "repo.car"]  # fmt: skip
CROSS_POSTED = "A runbook nobody has tried is a hope, not a runbook. We rehearse ours on quiet Tuesdays now."


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for s in ("train", "valid", "test")
            for line in (folder / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]  # fmt: skip


def test_several_exports_merge_with_cross_platform_dedup(tmp_path):
    report = build_dataset(SOURCES, DataSpec(), tmp_path)
    rows = _rows(tmp_path)
    assert (report.read, report.kept, len(rows)) == (36, 16, 16)
    per_source = {Path(s["source"]).name: (s["platform"], s["read"], s["kept"]) for s in report.sources}
    # alone: LinkedIn 3, Facebook 5, Threads 5, Bluesky 5; the Facebook repeat of a LinkedIn post and the
    # Bluesky copy of a Threads post are dropped as exact duplicates of the earlier input's copy
    assert per_source == {"linkedin-small": ("linkedin", 6, 3), "facebook-export": ("facebook", 9, 4),
                          "threads-export": ("threads", 10, 5), "repo.car": ("bluesky", 11, 4)}  # fmt: skip
    assert report.sources[3]["dropped"]["exact duplicates"] == 1
    assert report.read == sum(s["read"] for s in report.sources)
    assert report.dropped["exact duplicates"] == 3  # 2 across inputs + Threads' own repeat
    replies = [r["messages"][2]["content"] for r in rows]
    assert replies.count(CROSS_POSTED) == 1
    by_reply = {r["messages"][2]["content"]: r["messages"][1]["content"] for r in rows}
    assert by_reply[CROSS_POSTED].startswith("Write a Threads post about ")  # the first input's copy
    nouns = {req.split(" about ")[0] for req in by_reply.values()}
    assert nouns == {
        "Write a LinkedIn post",
        "Write a Facebook post",
        "Write a Threads post",
        "Write a Bluesky post",
    }
    assert rows[0]["messages"][0]["content"] == "You are Maya Lindqvist. Write each post in your own voice."
    assert report.platform == "mixed" and report.platform_name == "LinkedIn + Facebook + Threads + Bluesky"
    text = format_report(report)
    assert "  Bluesky " in text and "repo.car: read 11 → kept 4 (" in text


def test_data_import_takes_several_inputs_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "data"
    main(["data", "import", *map(str, SOURCES[:2]), str(EXPORTS / "reddit-export"), "-o", str(out)])
    printed = capsys.readouterr().out
    assert "LinkedIn + Facebook + Reddit data from " in printed
    assert "read 24 → kept 11" in printed
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [s["platform"] for s in saved["sources"]] == ["linkedin", "facebook", "reddit"]
    requests = [r["messages"][1]["content"] for r in _rows(out)]
    assert any(r.startswith("Write a Reddit post in r/ExperiencedDevs about ") for r in requests)


def test_an_internal_error_while_importing_is_one_line_with_a_log(tmp_path, capsys, monkeypatch):
    """The import path goes through the CLI's guard: a bug in an importer never shows a traceback."""
    from localft.data import importers

    def broken(src, spec, tally):
        raise ZeroDivisionError("division by zero")

    monkeypatch.delenv("LOCALFT_DEBUG", raising=False)
    monkeypatch.setitem(importers.IMPORTERS, "reddit", broken)
    with pytest.raises(SystemExit) as done:
        main(["data", "import", str(SOURCES[0]), str(EXPORTS / "reddit-export"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert done.value.code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(
        "error: internal error in data import: ZeroDivisionError: division by zero; details in "
    )
    assert "Traceback" in Path(err.strip().rsplit("details in ", 1)[1]).read_text(encoding="utf-8")


def test_recipe_from_several_exports_imports_them_together_and_resumes(tmp_path):
    from localft.recipes import get_recipe
    from localft.recipes.pipeline import open_recipe_run

    recipe = get_recipe("style-clone")
    sources = [EXPORTS / "linkedin-complete", EXPORTS / "threads-export", EXPORTS / "x-long-posts",
               EXPORTS / "reddit-export", EXPORTS / "facebook-export"]  # fmt: skip
    rr = open_recipe_run(recipe, sources, model="embedded")
    rr.do_import()
    report = json.loads((rr.run.data_dir / "report.json").read_text(encoding="utf-8"))
    assert [s["kept"] for s in report["sources"]] == [5, 5, 3, 4, 5] and report["kept"] == 22
    assert rr.run.stage_done("import")
    again = open_recipe_run(recipe, sources, model="embedded")  # the same command finds its run
    assert again.run.path == rr.run.path and again.sources == [p.resolve() for p in sources]
    assert open_recipe_run(recipe, sources[:2], model="embedded").run.path != rr.run.path
