"""A GGUF loaded in llama.cpp for evaluation: perplexity of assistant replies, and generations.

Prompts are rendered and tokenized by the HF tokenizer the model was trained with, so base and
tuned see exactly the text training saw (llama.cpp and transformers tokenize identically).
"""

from __future__ import annotations

import math
from pathlib import Path

from localft.data.chat_tokens import IGNORE, render, tokenize_row
from localft.errors import ExportError


def model_files(model) -> tuple[Path, Path | None]:
    """The GGUF and the LoRA adapter GGUF (or None) llama.cpp loads for a path or a ChatModel."""
    return Path(getattr(model, "gguf", model)), getattr(model, "adapter", None)


class GgufModel:
    """One GGUF in llama.cpp, or a ChatModel (a base GGUF + a LoRA adapter GGUF). Use as a context
    manager: `close()` frees it."""

    def __init__(self, gguf, tokenizer, n_ctx: int = 1024, seed: int = 0):
        from localft.export.llamacpp import load_llama

        self.path, adapter = model_files(gguf)
        self.tokenizer = tokenizer
        self.n_ctx = n_ctx
        # logits_all: perplexity needs the logits at every position, not just the last.
        self.llm = load_llama(self.path, n_ctx=n_ctx, logits_all=True, seed=seed, lora_path=adapter)

    def __enter__(self) -> GgufModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        from localft.export.llamacpp import close_llama

        if self.llm is not None:
            close_llama(self.llm)
            self.llm = None

    def reply_nll(self, row: dict) -> tuple[float, int]:
        """Summed negative log-likelihood of the assistant tokens of `row`, and their count."""
        import numpy as np

        from localft.export.llamacpp import next_token_nll

        ex = tokenize_row(self.tokenizer, row, self.n_ctx, "completions")
        ids, labels = ex.input_ids, ex.labels
        keep = np.asarray(labels[1:]) != IGNORE
        if len(ids) < 2 or not keep.any():
            return 0.0, 0
        nll, _ = next_token_nll(self.llm, ids)
        return float(nll[keep].sum()), int(keep.sum())

    def perplexity(self, rows: list[dict]) -> float:
        """exp(mean NLL) over every assistant token of `rows`: how expected the real replies are."""
        total, count = 0.0, 0
        for row in rows:
            nll, n = self.reply_nll(row)
            total, count = total + nll, count + n
        if count == 0:
            raise ExportError("no assistant tokens to score: the test split is empty")
        return math.exp(total / count)

    def generate(
        self, messages: list[dict] | str, max_tokens: int = 96, temperature: float = 0.7, seed: int = 0
    ) -> str:
        """The model's reply to `messages` (system/user turns), or its continuation of a plain text,
        sampled with a fixed seed."""
        if isinstance(messages, str):
            ids = self.tokenizer(messages, add_special_tokens=True)["input_ids"]
        else:
            prompt = render(self.tokenizer, messages, add_generation_prompt=True)
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = ids[-(self.n_ctx - max_tokens) :]
        stop = [s for s in (self.tokenizer.eos_token, "<|im_end|>", "<|eot_id|>", "<end_of_turn>") if s]
        self.llm.reset()
        out = self.llm.create_completion(
            prompt=ids, max_tokens=max_tokens, temperature=temperature, top_p=0.95,
            repeat_penalty=1.1, seed=seed, stop=stop,
        )  # fmt: skip
        return out["choices"][0]["text"].strip()

    def generate_all(
        self, prompts: list[list[dict]], max_tokens: int, seed: int, on_progress=lambda done, total: None
    ) -> list[str]:
        """One reply per prompt (seed + its index), reporting (done, total) before each."""
        replies = []
        for i, messages in enumerate(prompts):
            on_progress(i, len(prompts))
            replies.append(self.generate(messages, max_tokens=max_tokens, seed=seed + i))
        on_progress(len(prompts), len(prompts))
        return replies
