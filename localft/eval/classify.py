"""Classification evaluation: each model picks a label under a llama.cpp grammar that allows only the
label set; the tuned model is asked zero-shot, the base model with k examples per class (few-shot)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from localft.errors import DataError
from localft.events import Emit, Stage
from localft.run.folder import RunDir

# The GGUF type a classifier is exported and evaluated as: the labels are short, so precision is cheap.
CLASSIFY_QUANT = "Q8_0"
SHOTS = 2  # examples per class in the base model's few-shot prompt
OTHER = "(other)"  # a reply outside the label set (only when a grammar could not hold it)
CORNER = "true \\ answered"


def label_grammar(labels: list[str]) -> str:
    """GBNF whose only sentences are the labels (JSON string escapes are GBNF's escapes)."""
    return "root ::= " + " | ".join(json.dumps(label) for label in labels) + "\n"


def run_labels(run: RunDir) -> list[str]:
    """The label set the classify recipe recorded at import."""
    try:
        labels = json.loads((run.data_dir / "report.json").read_text(encoding="utf-8"))["labels"]
    except (FileNotFoundError, ValueError, KeyError):
        raise DataError(
            f"run {run.id} has no label set; it was not imported by the classify recipe"
        ) from None
    return list(labels)


def few_shot_prompt(messages: list[dict], shots: list[tuple[str, str]]) -> list[dict]:
    """The query's system prompt, then each shot as a user turn answered by its label, then the query."""
    turns = [t for text, label in shots for t in ({"role": "user", "content": text},
                                                  {"role": "assistant", "content": label})]  # fmt: skip
    system = [m for m in messages if m["role"] == "system"]
    return system + turns + [m for m in messages if m["role"] != "system"]


def text_and_label(row: dict) -> tuple[str, str]:
    """A classify recipe row's text (the user turn) and its label (the answer)."""
    user = next(m["content"] for m in row["messages"] if m["role"] == "user")
    return user, row["messages"][-1]["content"]


def pick_shots(train_rows: list[dict], labels: list[str], k: int, seed: int) -> list[tuple[str, str]]:
    """k training examples of each label, interleaved label by label so no label always comes last."""
    by_label: dict[str, list[str]] = {label: [] for label in labels}
    for row in train_rows:
        user, answer = text_and_label(row)
        if answer in by_label:
            by_label[answer].append(user)
    rng = random.Random(seed)
    chosen = {label: rng.sample(texts, min(k, len(texts))) for label, texts in by_label.items()}
    return [(chosen[label][i], label) for i in range(k) for label in labels if i < len(chosen[label])]


def predict(
    gguf: Path, tokenizer, prompts: list[list[dict]], labels: list[str],
    on_progress: Callable[[str], None] = lambda _: None,
) -> tuple[list[str], list[int]]:  # fmt: skip
    """The label the model answers to each prompt (greedy, grammar-constrained) and each prompt's tokens."""
    from llama_cpp import LlamaGrammar

    from localft.data.chat_tokens import render
    from localft.eval.gguf_model import model_files
    from localft.export.llamacpp import close_llama, load_llama

    encoded = [
        tokenizer(render(tokenizer, m, add_generation_prompt=True), add_special_tokens=False)["input_ids"]
        for m in prompts
    ]
    longest_label = max(len(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in labels)
    n_ctx = 256 * ((max(map(len, encoded)) + longest_label + 8) // 256 + 1)
    grammar = LlamaGrammar.from_string(label_grammar(labels), verbose=False)
    path, adapter = model_files(gguf)  # a GGUF, or base + adapter
    llm = load_llama(path, lora_path=adapter, n_ctx=n_ctx)
    answers = []
    try:
        for i, ids in enumerate(encoded):
            if i % 8 == 0:
                on_progress(f"{i}/{len(encoded)} texts")
            llm.reset()
            out = llm.create_completion(
                prompt=list(ids), max_tokens=longest_label + 4, temperature=0.0, grammar=grammar
            )
            text = out["choices"][0]["text"].strip()
            answers.append(text if text in labels else OTHER)
    finally:
        close_llama(llm)
    return answers, [len(ids) for ids in encoded]


def classification_scores(truth: list[str], predicted: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1 over `labels`, per-class precision/recall/F1/support, confusion matrix
    (rows: true label; columns: the labels, plus OTHER when some answer fell outside them)."""
    columns = labels + ([OTHER] if OTHER in predicted else [])
    matrix = [[0] * len(columns) for _ in labels]
    for t, p in zip(truth, predicted, strict=True):
        matrix[labels.index(t)][columns.index(p)] += 1
    per_class = {}
    for i, label in enumerate(labels):
        hit = matrix[i][i]
        said = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = hit / said if said else 0.0
        recall = hit / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return {
        "accuracy": sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth),
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(labels),
        "per_class": per_class,
        "columns": columns,
        "confusion": matrix,
    }


def confusion_text(labels: list[str], scores: dict) -> str:
    """The confusion matrix as a fixed-width table: rows are the true labels."""
    cols = scores["columns"]
    width = max(len(x) for x in [*labels, CORNER])
    lines = [f"{CORNER:<{width}}  " + "  ".join(f"{c:>{max(len(c), 4)}}" for c in cols)]
    for label, row in zip(labels, scores["confusion"], strict=True):
        cells = "  ".join(f"{n:>{max(len(c), 4)}}" for c, n in zip(cols, row, strict=True))
        lines.append(f"{label:<{width}}  {cells}")
    return "\n".join(lines)


def verdict(metrics: dict, shots: int) -> str:
    """Which wins (macro-F1 first, then accuracy), by how much, and the prompt tokens saved per query."""
    f1, acc, tok = metrics["macro_f1"], metrics["accuracy"], metrics["prompt_tokens"]
    saved = tok["base"] - tok["tuned"]
    cost = (f"{tok['tuned']:.0f} prompt tokens per query instead of {tok['base']:.0f} "
            f"({saved:.0f} saved per query)")  # fmt: skip
    figures = (f"macro-F1 {f1['tuned']:.3f} vs {f1['base']:.3f} ({f1['tuned'] - f1['base']:+.3f}), "
               f"accuracy {acc['tuned']:.3f} vs {acc['base']:.3f} ({acc['tuned'] - acc['base']:+.3f})")  # fmt: skip
    if (f1["tuned"], acc["tuned"]) > (f1["base"], acc["base"]):
        return f"The fine-tuned model wins: {figures}, with {cost}."
    if (f1["tuned"], acc["tuned"]) == (f1["base"], acc["base"]):
        return f"A tie: {figures}; the fine-tuned model needs {cost}."
    return (f"The base model prompted with {shots} examples per class wins: {figures}; the fine-tuned "
            f"model needs {cost}, but answers worse.")  # fmt: skip


def classify_report(
    run: RunDir, rows: list[dict], train_rows: list[dict], base_gguf: Path, tuned_gguf: Path, tokenizer,
    emit: Emit, samples: int = 64, shots: int = SHOTS,
) -> dict:  # fmt: skip
    """Tuned (zero-shot) vs base (few-shot) on up to `samples` test rows, both grammar-constrained."""
    from localft.eval.plots import plot_confusions

    labels = run_labels(run)
    rows = rows[:samples]
    queries = [r["messages"][:-1] for r in rows]
    truth = [r["messages"][-1]["content"] for r in rows]
    examples = pick_shots(train_rows, labels, shots, run.read_spec().seed)
    prompts = {"base": [few_shot_prompt(q, examples) for q in queries], "tuned": queries}
    results = {}
    for i, (who, gguf) in enumerate((("base", base_gguf), ("tuned", tuned_gguf))):

        def progress(what: str, i=i, who=who) -> None:
            emit(Stage("eval", 1 + i, 4, f"{who}: {what}"))

        answers, lengths = predict(gguf, tokenizer, prompts[who], labels, progress)
        results[who] = {**classification_scores(truth, answers, labels), "answers": answers,
                        "prompt_tokens": sum(lengths) / len(lengths)}  # fmt: skip
    metrics = {
        key: {w: results[w][key] for w in results} for key in ("accuracy", "macro_f1", "prompt_tokens")
    }
    run.eval_dir.mkdir(parents=True, exist_ok=True)
    png = plot_confusions(
        labels, {f"base, {shots} shots per class": results["base"], "fine-tuned": results["tuned"]},
        run.eval_dir / "confusion.png",
    )  # fmt: skip
    return {
        "metrics": metrics,
        "verdict": verdict(metrics, shots),
        "comparison": f"base prompted with {shots} examples per class ({len(examples)} in all) vs the "
        "fine-tuned model asked zero-shot; answers constrained to the label set by a llama.cpp grammar",
        "classification": {
            "labels": labels, "shots": shots, "shot_examples": len(examples),
            **{w: {k: results[w][k] for k in ("per_class", "columns", "confusion")} for w in results},
        },
        "samples": [
            {"prompt": q[-1]["content"], "real": t, "base": results["base"]["answers"][j],
             "tuned": results["tuned"]["answers"][j]}
            for j, (q, t) in enumerate(zip(queries[:8], truth, strict=False))
        ],
        "plots": {"confusion": str(png)},
        "test_rows": len(rows), "generations": len(rows),
    }  # fmt: skip


def classification_markdown(report: dict) -> list[str]:
    """Per-class precision/recall and the confusion matrices, for report.md."""
    info = report["classification"]
    labels = info["labels"]
    lines = [f"**Verdict:** {report['verdict']}", "", f"_{report['comparison']}._", "",
             "## Per class", "", "| Label | Base precision | Base recall | Tuned precision | Tuned recall | Support |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label in labels:
        b, t = info["base"]["per_class"][label], info["tuned"]["per_class"][label]
        lines.append(
            f"| {label} | {b['precision']:.3f} | {b['recall']:.3f} | {t['precision']:.3f} "
            f"| {t['recall']:.3f} | {t['support']} |"
        )
    for who, title in (("base", "base, few-shot"), ("tuned", "fine-tuned")):
        lines += ["", f"## Confusion matrix ({title})", "", "```", confusion_text(labels, info[who]), "```"]
    lines.append("")
    return lines
