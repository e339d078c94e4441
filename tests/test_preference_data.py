"""Preference data: the standard and conversational JSONL forms, a Hugging Face dataset with a
column mapping, one-line errors for what a person gets wrong, and the assistant-only mask on the
chosen and the rejected side alike (real chat templates and tokenizers)."""

from __future__ import annotations

import json

import pytest

from localft.data.pairs import (
    Judged,
    Pair,
    as_judged,
    as_pairs,
    parse_columns,
    read_hf_preferences,
    read_preferences,
    tokenize_completion,
)
from localft.errors import DataError

STANDARD = {"prompt": "Write a post about code review.", "chosen": "Review is a talk.", "rejected": "LGTM."}
CONVERSATIONAL = {
    "prompt": [
        {"role": "system", "content": "You are Maya."},
        {"role": "user", "content": "Write a post about code review."},
        {"role": "assistant", "content": "Code review is not a gate."},
        {"role": "user", "content": "Shorter."},
    ],
    "chosen": [{"role": "assistant", "content": "Review is a talk."}],
    "rejected": [{"role": "assistant", "content": "Reviews are important for quality."}],
}


def _write(tmp_path, rows, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def test_standard_and_conversational_forms_read_as_one(tmp_path):
    judged = {"prompt": "Say hi", "completion": "hello there", "label": False}
    rows = read_preferences(_write(tmp_path, [STANDARD, CONVERSATIONAL, judged]), system="Be Maya.")
    standard, conversational, mark = rows
    assert standard == Pair(
        [{"role": "system", "content": "Be Maya."}, {"role": "user", "content": STANDARD["prompt"]}],
        "Review is a talk.",
        "LGTM.",
    )
    assert conversational.prompt == CONVERSATIONAL["prompt"]  # its own system prompt stays
    assert conversational.rejected == "Reviews are important for quality."
    assert mark == Judged([{"role": "system", "content": "Be Maya."}, {"role": "user", "content": "Say hi"}],
                          "hello there", False)  # fmt: skip
    # DPO uses pairs; KTO sees each pair as a good and a bad completion, and marks as they are.
    assert len(as_pairs(rows)) == 2
    assert [j.good for j in as_judged(rows)] == [True, False, True, False, False]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "p", "chosen": "a"}, "pairs.jsonl:1: missing field 'rejected'"),
        ({"prompt": "p", "chosen": "same ", "rejected": "same"}, "chosen and rejected are identical"),
        ({"prompt": "p", "chosen": "  ", "rejected": "b"}, "'chosen' is empty"),
        ({"prompt": "", "chosen": "a", "rejected": "b"}, "'prompt' is empty"),
        (
            {"prompt": "p", "chosen": "a", "rejected": [{"role": "user", "content": "b"}]},
            "one assistant message",
        ),
        (
            {"prompt": [{"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"},
            "must be the user's",
        ),
        ({"prompt": "p", "completion": "a", "label": "yes"}, "'label' must be true (good) or false (bad)"),
        ("{not json", "pairs.jsonl:1 is not valid JSON"),
    ],
)
def test_bad_rows_are_one_line_errors(tmp_path, row, message):
    with pytest.raises(DataError) as err:
        read_preferences(_write(tmp_path, [row]))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_pairs_from_marks_of_the_same_prompt():
    prompt = [{"role": "user", "content": "Say hi"}]
    rows = [
        Judged(prompt, "hey!", True),
        Judged(prompt, "Greetings, user.", False),
        Judged(prompt, "yo", True),
    ]
    assert as_pairs(rows) == [Pair(prompt, "hey!", "Greetings, user.")]


def test_hf_dataset_with_a_column_mapping(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "prefs"
    records = {"question": ["Write about tea.", "Write about rain."], "good": ["Tea, always.", "Rain again!"],
               "bad": ["Tea is a beverage.", "Precipitation occurred."]}  # fmt: skip
    datasets.Dataset.from_dict(records).to_parquet(str(tmp_path / "prefs.parquet"))
    folder.mkdir()
    (tmp_path / "prefs.parquet").rename(folder / "train.parquet")
    mapping = parse_columns("prompt=question, chosen=good,rejected=bad")
    rows = read_hf_preferences(str(folder), mapping)
    assert [(r.prompt[-1]["content"], r.chosen, r.rejected) for r in rows] == list(
        zip(records["question"], records["good"], records["bad"], strict=True)
    )
    with pytest.raises(DataError, match="has no column 'answer'; its columns: bad, good, question"):
        read_hf_preferences(str(folder), parse_columns("chosen=answer"))
    with pytest.raises(DataError, match="missing field 'prompt'"):
        read_hf_preferences(str(folder), parse_columns("chosen=good,rejected=bad"))
    with pytest.raises(DataError, match="bad column mapping 'reply'"):
        parse_columns("reply")


@pytest.mark.parametrize("name", ["meta-llama-Llama-3.1-8B-Instruct", "SmolLM2 (embedded)"])
def test_mask_trains_only_the_completion_on_both_sides(name):
    """Chosen and rejected are masked alike: the one trained run of each is the reply as the template
    renders it plus its end-of-turn token; the prompt, including earlier assistant turns, is not."""
    from tests.test_data_chat_tokens_real import CASES, paired_tokenizer, trained_runs

    tok, case = paired_tokenizer(name), CASES[name]
    pair = read_preferences_row(CONVERSATIONAL)
    for reply in (pair.chosen, pair.rejected):
        example = tokenize_completion(tok, pair.prompt, reply, 512)
        assert trained_runs(tok, example) == [case.last + reply + case.last_eot]


def read_preferences_row(row) -> Pair:
    from localft.data.pairs import parse_pair

    return parse_pair(row, "test")
