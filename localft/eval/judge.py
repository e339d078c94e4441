"""Pairwise LLM-as-judge: a local GGUF picks the better of two replies to the same prompt, asked once
with each order so a judge that favours the first (or second) slot cancels out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

JUDGE_SYSTEM = "You are a strict, fair judge of answers. Reply with one letter."
JUDGE_PROMPT = (
    "Here is a request and two answers to it.\n\nRequest:\n{prompt}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
    "Which answer fulfils the request better? Reply with A or B."
)
CHOICE_GRAMMAR = 'root ::= "A" | "B"\n'


def judge_pairs(
    judge_gguf: Path, prompts: list[str], base: list[str], tuned: list[str],
    on_progress: Callable[[str], None] = lambda _: None,
) -> dict:  # fmt: skip
    """For each prompt, the judge's pick with the base reply first, then with the tuned reply first.
    A model wins a prompt when picked in both orders; a split decision is a tie."""
    from llama_cpp import LlamaGrammar

    from localft.chat.session import ChatSession

    grammar = LlamaGrammar.from_string(CHOICE_GRAMMAR, verbose=False)
    session = ChatSession(judge_gguf, allow_foreign=True, system=JUDGE_SYSTEM, n_ctx=4096)
    verdicts = []
    try:
        for i, (prompt, b, t) in enumerate(zip(prompts, base, tuned, strict=True)):
            on_progress(f"judge {i + 1}/{len(prompts)}")
            picks = []
            for first, second, first_is in ((b, t, "base"), (t, b, "tuned")):
                text = JUDGE_PROMPT.format(prompt=prompt, a=first or "(empty)", b=second or "(empty)")
                session.messages = [{"role": "user", "content": text}]
                ids = session.prompt_tokens()  # the judge's own template, system folded where it has none
                session.llm.reset()
                out = session.llm.create_completion(
                    prompt=ids, max_tokens=2, temperature=0.0, grammar=grammar
                )
                letter = out["choices"][0]["text"].strip()[:1]
                picks.append(first_is if letter == "A" else ("tuned" if first_is == "base" else "base"))
            verdicts.append(picks[0] if picks[0] == picks[1] else "tie")
    finally:
        session.close()
    n = len(verdicts)
    tally = {w: verdicts.count(w) for w in ("base", "tuned", "tie")}
    return {
        "judge": str(judge_gguf), "pairs": n, "wins": tally, "verdicts": verdicts,
        "score": {w: (tally[w] + tally["tie"] / 2) / n if n else 0.0 for w in ("base", "tuned")},
    }  # fmt: skip


def judge_markdown(judge: dict) -> list[str]:
    wins, name = judge["wins"], Path(judge["judge"]).name
    return [
        "## Pairwise judge",
        "",
        f"`{name}` compared base and tuned replies to {judge['pairs']} prompts, each pair asked in both "
        f"orders: tuned won {wins['tuned']}, base won {wins['base']}, {wins['tie']} split by position (ties).",
        "",
    ]
