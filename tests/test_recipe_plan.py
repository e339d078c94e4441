"""Recipes: the registry, planning a run for this machine, data checks and finding a run to resume."""

import csv
import io
import json
import zipfile

import pytest

from localft.cli.main import main
from localft.config import TrainSpec
from localft.errors import ConfigError, DataError, DoesNotFit
from localft.recipes import get_recipe
from localft.recipes.json_extractor import prepare_data, read_examples
from localft.recipes.pipeline import check_enough_data, export_spec_for, open_recipe_run, recipe_spec
from localft.run.folder import list_runs, new_run

PEOPLE = [
    ("Ada", "London", 36),
    ("Linus", "Helsinki", 28),
    ("Grace", "New York", 45),
    ("Alan", "Wilmslow", 41),
]


def _json_examples(path, n):
    lines = []
    for i in range(n):
        name, city, age = PEOPLE[i % len(PEOPLE)]
        text = f"Note {i}: met {name} today, {age} years old, who lives in {city}."
        lines.append(json.dumps({"input": text, "output": {"name": name, "city": city, "age": age}}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_recipe_list_shows_both_recipes(capsys):
    main(["recipe", "list"])
    out = capsys.readouterr().out
    assert "style-clone" in out and "json-extractor" in out and "--from" in out
    with pytest.raises(ConfigError, match="unknown recipe"):
        get_recipe("nope")


def test_plan_on_a_cpu_picks_the_embedded_model_and_cpu_defaults():
    recipe = get_recipe("style-clone")
    spec = recipe_spec(recipe, None, overrides={"steps": 7})
    assert spec.model == "embedded"
    assert spec.max_seq_len == recipe.cpu_defaults["max_seq_len"] and spec.steps == 7
    assert spec.early_stopping_patience == recipe.cpu_defaults["early_stopping_patience"]
    assert export_spec_for(recipe, ["q8_0"]).quants == ["Q4_K_M", "Q8_0"]


def test_a_model_that_does_not_fit_is_refused_with_numbers():
    with pytest.raises(DoesNotFit, match=r"needs about .* (try|pick a smaller)"):
        recipe_spec(
            get_recipe("style-clone"), "llama3.2-3b", overrides={"batch_size": 512, "max_seq_len": 8192}
        )


def test_json_extractor_writes_chat_splits(tmp_path):
    src = _json_examples(tmp_path / "people.jsonl", 30)
    run = new_run(TrainSpec())
    prepare_data(src, run, lambda _e: None)
    rows = {
        s: [json.loads(x) for x in run.split_path(s).read_text().splitlines()]
        for s in ("train", "valid", "test")
    }
    assert sum(len(v) for v in rows.values()) == 30 and all(rows.values())
    first = rows["test"][0]["messages"]
    assert "age, city, name" in first[0]["content"]
    assert json.loads(first[2]["content"]).keys() == {"name", "city", "age"}
    assert check_enough_data(run, get_recipe("json-extractor"), src) == 30

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "x", "output": {"a": 1}}\n{"input": "y"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        read_examples(bad)


def test_too_few_posts_is_refused_with_the_count_and_the_reasons(tmp_path):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility"])
    for i in range(8):
        writer.writerow(
            [
                f"2026-10-{i + 1:02d} 08:00:00",
                "",
                f"Post {i}: a long enough thought about teams and work number {i}.",
                "",
                "",
                "MEMBER_NETWORK",
            ]
        )
    writer.writerow(
        ["2026-10-20 08:00:00", "", "", "https://example.com/x", "", "MEMBER_NETWORK"]
    )  # a bare reshare
    export = tmp_path / "tiny-export.zip"
    with zipfile.ZipFile(export, "w") as z:
        z.writestr("Shares.csv", buf.getvalue())
    rr = open_recipe_run(get_recipe("style-clone"), export)
    with pytest.raises(DataError, match=r"only 8 usable examples .* needs at least 20.*1 reshares"):
        rr.do_import()
    assert not rr.run.stage_done("import")


def test_the_same_command_finds_its_run_again(tmp_path):
    src = _json_examples(tmp_path / "people.jsonl", 30)
    recipe = get_recipe("json-extractor")
    first = open_recipe_run(recipe, src)
    first.run.mark_stage("import", {})
    again = open_recipe_run(recipe, src)
    assert again.run.path == first.run.path and again.run.stage_done("import")
    assert open_recipe_run(recipe, src, run_ref=first.run.id).run.path == first.run.path
    other_model = open_recipe_run(recipe, src, model="embedded")  # --model given: another command
    fresh = open_recipe_run(recipe, src, fresh=True)
    assert len({first.run.path, other_model.run.path, fresh.run.path}) == 3
    assert len(list_runs()) == 3
