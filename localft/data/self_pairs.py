"""Preference pairs without a person (`--pairs self`): for each request of a style-clone run's
split, the real post is the chosen answer and the run's own GGUF draft (llama.cpp) the rejected one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from localft.data.pairs import Pair, pairs_path, write_preferences
from localft.errors import DataError
from localft.run.folder import RunDir

SELF_PAIR_SPLITS = ("train", "valid")  # valid: held-out pairs for the validation loss and reward accuracy
DRAFT_MAX_TOKENS = 160


def build_self_pairs(
    source: RunDir,
    out: RunDir,
    *,
    gguf: Path | None = None,
    limit: int | None = None,
    max_tokens: int = DRAFT_MAX_TOKENS,
    progress: Callable[[str, int, int], None] = lambda split, done, total: None,
) -> dict[str, int]:
    """Write out/data/pairs-{train,valid}.jsonl from `source`'s splits and GGUF; returns the pair
    count per split. A draft equal to the real post makes no pair."""
    from localft.eval.gguf_model import GgufModel
    from localft.eval.inputs import as_model, read_rows, split_prompt, tokenizer_for, tuned_model

    model_file = as_model(gguf) if gguf else tuned_model(source)  # a GGUF, or base + adapter
    tokenizer = tokenizer_for(source, source.read_spec().model)
    counts = {}
    with GgufModel(model_file, tokenizer, n_ctx=2048, seed=source.read_spec().seed) as model:
        for split in SELF_PAIR_SPLITS:
            rows = [r for r in read_rows(source.split_path(split)) if "messages" in r][:limit]
            prompts, real = zip(*map(split_prompt, rows), strict=True) if rows else ((), ())
            drafts = model.generate_all(
                list(prompts), max_tokens, 1000 * len(split), lambda i, n, s=split: progress(s, i, n)
            )
            pairs = [
                Pair(p, chosen, draft)
                for p, chosen, draft in zip(prompts, real, drafts, strict=True)
                if draft.strip() and draft.strip() != chosen.strip()
            ]
            write_preferences(pairs_path(out, split), pairs)
            counts[split] = len(pairs)
    if not counts.get("train"):
        raise DataError(f"run {source.id} gave no training pairs: its training split has no chat examples")
    return counts
