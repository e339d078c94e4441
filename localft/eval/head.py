"""Evaluation of a classification-head run (`--head`): the merged HF folder predicts the test texts,
scored like the chat classifier, beside the base model prompted few-shot and, where one was
evaluated on the same test split, the chat model fine-tuned by the classify recipe."""

from __future__ import annotations

import json
from pathlib import Path

from localft.eval.classify import (
    SHOTS,
    classification_markdown,
    classification_scores,
    few_shot_prompt,
    pick_shots,
    predict,
    run_labels,
    text_and_label,
    verdict,
)
from localft.events import Emit, Stage
from localft.run.folder import RunDir

KEYS = ("accuracy", "macro_f1", "prompt_tokens")
COLUMNS = (("base", "Base, few-shot (GGUF)"), ("chat", "Fine-tuned chat (GGUF)"), ("tuned", "Head (HF)"))


def head_predict(folder: Path, texts: list[str], batch_size: int = 16) -> tuple[list[str], list[int]]:
    """The label the merged head model gives each text (argmax), and each text's tokens."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from localft.library_logs import quiet_libraries

    quiet_libraries()  # `localft eval` too: no loading bars between the stage lines
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    answers, lengths = [], []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                            max_length=tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else 2048,
                            padding_side="right", return_tensors="pt")  # fmt: skip
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            answers += [labels[i] for i in logits.argmax(dim=-1).tolist()]
            lengths += enc["attention_mask"].sum(dim=1).tolist()
    return answers, lengths


def chat_run_report(run: RunDir) -> dict | None:
    """The newest evaluated chat classify run on the same test split as `run` (same input, seed and
    fractions give the same split), or None."""
    from localft.paths import runs_dir
    from localft.run.folder import recipe_info

    test = run.split_path("test").read_bytes()
    for path in sorted(runs_dir().iterdir(), reverse=True):
        other = RunDir(path)
        info = recipe_info(other)
        if other.path == run.path or not info or info.get("recipe") != "classify":
            continue
        try:
            if other.read_spec().head or other.split_path("test").read_bytes() != test:
                continue
            return json.loads((other.eval_dir / "report.json").read_text(encoding="utf-8")) | {
                "run": other.id
            }
        except (OSError, ValueError):
            continue
    return None


def head_report(run: RunDir, rows: list[dict], train_rows: list[dict], base_gguf: Path, tokenizer,
                emit: Emit, samples: int = 64, shots: int = SHOTS) -> dict:  # fmt: skip
    """The head (merged HF folder) vs the base few-shot under a label grammar, on up to `samples`
    test rows; the chat classifier's figures beside them when a run of it shares the test split."""
    from localft.eval.plots import plot_confusions
    from localft.run.export import merge_run

    labels = run_labels(run)
    rows = rows[:samples]
    texts, truth = (list(x) for x in zip(*(text_and_label(r) for r in rows), strict=True))
    examples = pick_shots(train_rows, labels, shots, run.read_spec().seed)
    emit(Stage("eval", 1, 4, "base, few-shot"))
    base_prompts = [few_shot_prompt(r["messages"][:-1], examples) for r in rows]
    answers, lengths = predict(base_gguf, tokenizer, base_prompts, labels)
    results = {"base": {**classification_scores(truth, answers, labels), "answers": answers,
                        "prompt_tokens": sum(lengths) / len(lengths)}}  # fmt: skip
    emit(Stage("eval", 2, 4, "head: merging and predicting"))
    folder = merge_run(run, emit=emit)
    answers, lengths = head_predict(folder, texts)
    results["tuned"] = {**classification_scores(truth, answers, labels), "answers": answers,
                        "prompt_tokens": sum(lengths) / len(lengths)}  # fmt: skip
    chat = chat_run_report(run)
    metrics = {key: {w: results[w][key] for w in results} for key in KEYS}
    if chat is not None:
        for key in KEYS:
            metrics[key]["chat"] = chat["metrics"][key]["tuned"]
    run.eval_dir.mkdir(parents=True, exist_ok=True)
    panels = {f"base, {shots} shots per class": results["base"]}
    if chat is not None:
        panels["fine-tuned chat"] = {**chat["classification"]["tuned"],
                                     **{k: chat["metrics"][k]["tuned"] for k in KEYS}}  # fmt: skip
    panels["classification head"] = results["tuned"]
    png = plot_confusions(labels, panels, run.eval_dir / "confusion.png")
    return {
        "head": True, "merged": str(folder), "chat_run": chat["run"] if chat else None,
        "metrics": metrics,
        "verdict": verdict(metrics, shots).replace("fine-tuned model", "classification head"),
        "comparison": f"base prompted with {shots} examples per class ({len(examples)} in all) under a "
        "llama.cpp label grammar vs the classification head (LoRA + head, argmax over the labels)",
        "classification": {
            "labels": labels, "shots": shots, "shot_examples": len(examples),
            **{w: {k: results[w][k] for k in ("per_class", "columns", "confusion")} for w in results},
        },
        "samples": [{"prompt": t, "real": y, "base": results["base"]["answers"][j],
                     "tuned": results["tuned"]["answers"][j]} for j, (t, y) in enumerate(zip(texts[:8], truth, strict=False))],
        "plots": {"confusion": str(png)},
        "test_rows": len(rows), "generations": len(rows),
    }  # fmt: skip


def head_markdown(report: dict) -> str:
    """report.md of a head run: the three columns, then per class and the confusion matrices."""
    from localft.eval.metrics import HEADLINE, fmt_metric

    who = [(w, title) for w, title in COLUMNS if w in report["metrics"]["accuracy"]]
    lines = [f"# Evaluation of run {report['run']} (classification head)", "",
             f"Base model `{report['model']}` prompted few-shot (as `{report['quant']}` GGUF), the classification "
             f"head of this run (the HF folder `{report['merged']}`; a GGUF cannot carry a head)"
             + (f", and the chat model fine-tuned by run {report['chat_run']}" if report.get("chat_run") else "")
             + f", on {report['test_rows']} held-out test texts.", "",
             "| Metric | " + " | ".join(t for _, t in who) + " |", "|---" * (len(who) + 1) + "|"]  # fmt: skip
    for key, label, _ in HEADLINE:
        if key in report["metrics"]:
            lines.append(
                f"| {label} | " + " | ".join(fmt_metric(report["metrics"][key][w]) for w, _ in who) + " |"
            )
    lines += ["", *classification_markdown(report)]
    if "confusion" in report.get("plots", {}):
        lines += [
            "## Confusion matrices",
            "",
            f"![Confusion matrices]({Path(report['plots']['confusion']).name})",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
