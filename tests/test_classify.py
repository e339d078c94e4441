"""The classify recipe's parts: labelled data in three formats, the stratified split, the scores, and
llama.cpp's grammar holding a real model's answers to the label set."""

import json
import sys
from pathlib import Path

import pytest

from localft.errors import DataError
from localft.eval.classify import (
    OTHER,
    classification_scores,
    confusion_text,
    few_shot_prompt,
    label_grammar,
    pick_shots,
    predict,
    verdict,
)
from localft.recipes.classify import chat_row, read_labelled, stratified_split, system_prompt

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_sample_sets_are_rebuilt_byte_for_byte(tmp_path):
    sys.path.insert(0, str(EXAMPLES))
    try:
        from sample_labelled import write_domain_notes, write_emails_jsonl, write_reviews_csv
    finally:
        sys.path.remove(str(EXAMPLES))
    assert write_reviews_csv(tmp_path / "reviews.csv") == 150
    assert write_emails_jsonl(tmp_path / "emails.jsonl") == 100
    assert write_domain_notes(tmp_path / "notes") == 8
    assert (tmp_path / "reviews.csv").read_bytes() == (EXAMPLES / "reviews.csv").read_bytes()
    assert (tmp_path / "emails.jsonl").read_bytes() == (EXAMPLES / "emails.jsonl").read_bytes()
    for path in (EXAMPLES / "workshop-notes").iterdir():
        assert (tmp_path / "notes" / path.name).read_bytes() == path.read_bytes(), path.name


def test_labelled_data_reads_from_csv_jsonl_and_a_local_hf_dataset(tmp_path):
    reviews = read_labelled(EXAMPLES / "reviews.csv")
    assert len(reviews) == 150 and {lab for _, lab in reviews} == {"positive", "negative", "neutral"}
    emails = read_labelled(EXAMPLES / "emails.jsonl")
    assert {lab for _, lab in emails} == {"phishing", "legitimate"}
    datasets = pytest.importorskip("datasets")
    # An HF dataset with integer class ids, as IMDB ships: the labels become strings.
    folder = tmp_path / "imdb-like"
    datasets.Dataset.from_dict(
        {"text": ["great film", "dull film", "loved it"], "label": [1, 0, 1]}
    ).to_parquet(str(folder / "train.parquet"))
    assert read_labelled(folder) == [("great film", "1"), ("dull film", "0"), ("loved it", "1")]


def test_labelled_data_errors_name_the_problem(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n')
    with pytest.raises(DataError, match="1 distinct label"):
        read_labelled(one)
    missing = tmp_path / "missing.csv"
    missing.write_text("text,stars\nfine,5\n")
    with pytest.raises(DataError, match=r"row 2: needs a \"text\" and a \"label\""):
        read_labelled(missing)


def test_stratified_split_holds_every_label_in_every_split():
    pairs = read_labelled(EXAMPLES / "reviews.csv")
    splits = stratified_split(pairs, seed=0, valid=0.1, test=0.2)
    assert {k: len(v) for k, v in splits.items()} == {"train": 105, "valid": 15, "test": 30}
    for part in splits.values():
        assert {lab for _, lab in part} == {"positive", "negative", "neutral"}
    assert sorted(map(tuple, sum(splits.values(), []))) == sorted(pairs)  # nothing lost or repeated


def test_scores_match_a_worked_example():
    labels = ["cat", "dog"]
    truth = ["cat", "cat", "cat", "dog", "dog"]
    said = ["cat", "cat", "dog", "dog", OTHER]
    s = classification_scores(truth, said, labels)
    assert s["accuracy"] == pytest.approx(3 / 5)
    # cat: P 2/2, R 2/3, F1 0.8; dog: P 1/2, R 1/2, F1 0.5
    assert s["per_class"]["cat"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert s["per_class"]["dog"]["f1"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(0.65)
    assert s["columns"] == ["cat", "dog", OTHER] and s["confusion"] == [[2, 1, 0], [0, 1, 1]]
    table = confusion_text(labels, s).splitlines()
    assert table[1].split() == ["cat", "2", "1", "0"] and table[2].split() == ["dog", "0", "1", "1"]


def test_verdict_names_the_winner_the_margin_and_the_tokens_saved():
    metrics = {"accuracy": {"base": 0.5, "tuned": 0.9}, "macro_f1": {"base": 0.4, "tuned": 0.88},
               "prompt_tokens": {"base": 300.0, "tuned": 60.0}}  # fmt: skip
    assert verdict(metrics, 2) == (
        "The fine-tuned model wins: macro-F1 0.880 vs 0.400 (+0.480), accuracy 0.900 vs 0.500 (+0.400), "
        "with 60 prompt tokens per query instead of 300 (240 saved per query)."
    )
    worse = {**metrics, "macro_f1": {"base": 0.9, "tuned": 0.5}}
    assert verdict(worse, 2).startswith("The base model prompted with 2 examples per class wins")


def test_few_shot_prompt_interleaves_k_examples_of_each_label():
    system = system_prompt(["neg", "pos"])
    train = [chat_row(system, f"text {i}", "pos" if i % 2 else "neg") for i in range(10)]
    shots = pick_shots(train, ["neg", "pos"], k=2, seed=0)
    assert [lab for _, lab in shots] == ["neg", "pos", "neg", "pos"]
    prompt = few_shot_prompt(chat_row(system, "query", "pos")["messages"][:-1], shots)
    assert [m["role"] for m in prompt] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert prompt[-1]["content"] == "query"


@pytest.mark.llama
def test_the_grammar_holds_a_real_model_to_the_label_set():
    pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    from localft.plan.catalog import embedded_gguf_path, resolve_model

    # Labels a free-running model would never write, with characters GBNF must escape.
    labels = ['spam "A"', "ham\\B", "ünïcode"]
    assert label_grammar(labels) == 'root ::= "spam \\"A\\"" | "ham\\\\B" | "\\u00fcn\\u00efcode"\n'
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("embedded"))
    system = system_prompt(labels)
    prompts = [[{"role": "system", "content": system}, {"role": "user", "content": t}]
               for t in ("What is the capital of France?", "Write a poem about rain.", "hi")]  # fmt: skip
    answers, lengths = predict(embedded_gguf_path(), tokenizer, prompts, labels)
    assert len(answers) == 3 and set(answers) <= set(labels)
    assert all(n > 20 for n in lengths)
    json.dumps(answers)
