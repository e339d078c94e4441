"""Prove a GGUF behaves like the HF model it came from: the same tokens for the same text, next-token
top-1 agreement and perplexity on held-out text, and a chat generation that stops at the end-of-turn token."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from localft.export.llamacpp import close_llama, load_llama, native_stderr_to, next_token_nll
from localft.export.pretokenizers import PROBE_TEXT

# quant -> (min top-1 agreement, max relative perplexity change); None = reported only.
# Top-1 of a faithful F16 file depends on the CPU's kernels: 99.80% on an AVX2 EPYC, 99.37% on an
# AVX-512 Xeon (same file, perplexity within 0.04% on both); a conversion bug lands far lower.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "F32": (0.99, 0.001),
    "F16": (0.99, 0.001),
    "Q8_0": (None, 0.01),
}
STOP_PROMPT = "What is the capital of France?"


def bundled_text() -> str:
    return resources.files("localft.export").joinpath("verify_text.txt").read_text(encoding="utf-8")


@dataclass
class Parity:
    quant: str
    tokens: int
    top1: float
    ppl_hf: float
    ppl_gguf: float
    tokenization_match: bool
    tokenization_diff: str | None = None  # where llama.cpp's tokens first differ from HF's

    @property
    def ppl_change(self) -> float:
        return self.ppl_gguf / self.ppl_hf - 1.0

    @property
    def passed(self) -> bool | None:
        """True/False against the target for this type; None where the type is only reported. Any
        tokenization difference fails the file: the model would read other tokens than in training."""
        if not self.tokenization_match:
            return False
        top1_min, ppl_max = TARGETS.get(self.quant, (None, None))
        if top1_min is None and ppl_max is None:
            return None
        return (top1_min is None or self.top1 >= top1_min) and (
            ppl_max is None or abs(self.ppl_change) <= ppl_max
        )

    @property
    def problem(self) -> str | None:
        """One line saying why the file failed, or None."""
        if self.passed is not False:
            return None
        if self.tokenization_diff:
            return f"{self.quant}: {self.tokenization_diff}"
        return (
            f"{self.quant} misses its parity target: top-1 {self.top1:.2%}, perplexity {self.ppl_change:+.3%}"
        )

    def to_dict(self) -> dict:
        return asdict(self) | {"ppl_change": self.ppl_change, "passed": self.passed}


def tokenization_difference(label: str, hf_ids: list[int], gguf_ids: list[int], decode) -> str | None:
    """None where the ids are the same; else the first differing position, the ids from there on both
    sides and the text around it (decoded from HF's ids)."""
    hf_ids, gguf_ids = list(hf_ids), list(gguf_ids)
    if hf_ids == gguf_ids:
        return None
    at = next(
        (i for i, (a, b) in enumerate(zip(hf_ids, gguf_ids, strict=False)) if a != b),
        min(len(hf_ids), len(gguf_ids)),
    )
    before, after = decode(hf_ids[max(0, at - 8) : at]), decode(hf_ids[at : at + 8])
    return (
        f"tokenization differs from HF at token {at} of {len(hf_ids)} in the {label}: "
        f"HF {hf_ids[at : at + 4]}, llama.cpp {gguf_ids[at : at + 4]}, text {before!r} | {after!r}"
    )


@dataclass
class StopCheck:
    prompt: str
    gguf_text: str
    hf_text: str
    finish_reason: str  # "stop": the GGUF ended on its end-of-turn token
    stopped: bool
    hf_stopped: bool
    same_text: bool

    @property
    def passed(self) -> bool:
        """The GGUF ends its turn wherever the HF model does (it may not ramble on)."""
        return self.stopped or not self.hf_stopped

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed}


def _perplexity(nll: np.ndarray) -> float:
    return float(math.exp(float(np.mean(nll))))


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))


class HfReference:
    """The HF model's next-token predictions on a text, computed once and compared with each GGUF."""

    def __init__(self, model_dir: Path, text: str, max_tokens: int = 512):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = Path(model_dir)
        self.text = text
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        self.model.eval()
        # Tokenization is compared on the whole held-out text, llama.cpp's pre-tokenizer probe and a
        # chat rendered by the model's template (special tokens and the text around them).
        self.tokenized: dict[str, tuple[str, list[int], bool]] = {
            "held-out text": (text, self.tokenizer(text)["input_ids"], True),
            "pre-tokenizer probe": (PROBE_TEXT, self.tokenizer(PROBE_TEXT)["input_ids"], True),
        }
        chat = self._rendered_chat(text)
        if chat is not None:
            ids = self.tokenizer(chat, add_special_tokens=False)["input_ids"]
            self.tokenized["chat rendered by its template"] = (chat, ids, False)
        self.ids = self.tokenized["held-out text"][1][:max_tokens]
        with torch.no_grad():
            logits = self.model(torch.tensor([self.ids])).logits[0].float().numpy()
        logp = _log_softmax(logits[:-1])
        self.top1 = logits[:-1].argmax(-1)
        self.nll = -logp[np.arange(len(self.ids) - 1), self.ids[1:]]
        self.ppl = _perplexity(self.nll)

    def compare(
        self, gguf: Path, quant: str, *, log_path: Path | None = None, lora_path: Path | None = None
    ) -> Parity:
        """`lora_path`: a LoRA adapter GGUF llama.cpp applies on top of `gguf`."""
        llm = load_llama(
            gguf, n_ctx=len(self.ids) + 8, logits_all=True, log_path=log_path, lora_path=lora_path
        )
        try:
            with native_stderr_to(log_path):
                diff = self.tokenization_difference(llm)
                nll, top1 = next_token_nll(llm, self.ids)
        finally:
            close_llama(llm)
        agree = float(np.mean(top1 == self.top1))
        return Parity(quant, len(self.ids), agree, self.ppl, _perplexity(nll), diff is None, diff)

    def _rendered_chat(self, text: str) -> str | None:
        """Two turns and a generation prompt cut from the held-out text, as the template renders them;
        None where the model has no template or its template refuses this conversation."""
        if not getattr(self.tokenizer, "chat_template", None):
            return None
        words = text.split()
        parts = [" ".join(words[:30]), " ".join(words[30:90]), " ".join(words[90:110]) or "And then?"]
        messages = [
            {"role": role, "content": part}
            for role, part in zip(("user", "assistant", "user"), parts, strict=True)
        ]
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # a template may reject any shape (roles, reasoning); the text checks still run
            return None

    def tokenization_difference(self, llm) -> str | None:
        """The first place where llama.cpp tokenizes the texts differently from HF, or None. HF finds
        added tokens written in the text and adds BOS/EOS as configured; so does llama.cpp here."""
        for label, (text, hf_ids, add_special) in self.tokenized.items():
            gguf_ids = llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)
            diff = tokenization_difference(label, hf_ids, gguf_ids, self.tokenizer.decode)
            if diff:
                return diff
        return None

    def greedy_chat(self, messages: list[dict], max_new_tokens: int = 48) -> tuple[str, bool]:
        """HF's greedy reply and whether it ended on an end-of-sequence token within the limit (the
        system prompt folded into the first user turn where the template has no system role, as
        training and the GGUF chat do)."""
        import torch

        from localft.data.chat_render import fold_system

        ids = self.tokenizer.apply_chat_template(
            fold_system(self.tokenizer, messages), add_generation_prompt=True, return_dict=True
        )["input_ids"]
        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([ids]),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[0][len(ids) :]
        return self.tokenizer.decode(new, skip_special_tokens=True), len(new) < max_new_tokens

    def stop_check(
        self,
        gguf: Path,
        reply,
        *,
        system: str | None = None,
        prompt: str = STOP_PROMPT,
        log_path: Path | None = None,
    ) -> StopCheck:
        """Does the GGUF end its turn where the HF model does? `reply(gguf, messages, max_tokens=,
        log_path=)` -> (text, finish_reason) is the chat through llama.cpp, given by the caller."""
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        text, reason = reply(gguf, messages, max_tokens=48, log_path=log_path)
        hf_text, hf_stopped = self.greedy_chat(messages, max_new_tokens=48)
        return StopCheck(
            prompt, text, hf_text, reason, reason == "stop", hf_stopped, text.strip() == hf_text.strip()
        )


def gguf_perplexity(gguf: Path, text: str, *, max_tokens: int = 1024, log_path: Path | None = None) -> float:
    """Perplexity of `text` under the GGUF, tokenized by the GGUF's own tokenizer."""
    llm = load_llama(gguf, n_ctx=max_tokens + 8, logits_all=True, log_path=log_path)
    try:
        with native_stderr_to(log_path):
            ids = llm.tokenize(text.encode("utf-8"), add_bos=True)[:max_tokens]
            if len(ids) < 2:
                raise ValueError("text is too short for perplexity (fewer than 2 tokens)")
            nll, _ = next_token_nll(llm, ids)
    finally:
        close_llama(llm)
    return _perplexity(nll)
