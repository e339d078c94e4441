"""The evaluation's headline metrics (their labels and which way is better) and how a figure prints."""

from __future__ import annotations

# (key in report["metrics"], label, lower is better)
HEADLINE = [
    ("perplexity", "Test perplexity of the real replies", True),
    ("style_distance", "Style distance to the real posts", True),
    ("leak_longest", "Longest n-gram copied from training (words)", True),
    ("valid_json_rate", "Valid JSON replies", False),
    ("key_match_rate", "Replies with exactly the expected keys", False),
    ("field_accuracy", "Field accuracy", False),
    ("accuracy", "Accuracy", False),
    ("macro_f1", "Macro-F1", False),
    ("prompt_tokens", "Prompt tokens per query", True),
    ("rouge_l", "ROUGE-L F1 against the real replies", False),
    ("bleu", "BLEU against the real replies", False),
    ("judge_score", "Judge's preference (wins + half the ties)", False),
    ("reward", "Mean reward on held-out requests (grpo's rewards)", False),
]


def fmt_metric(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)
