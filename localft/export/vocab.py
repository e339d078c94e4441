"""The tokenizer of an HF folder written into GGUF metadata: tokens, types, merges or scores,
the llama.cpp pre-tokenizer name, special token ids, add-bos/eos flags and the chat template."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import gguf

from localft.errors import ExportError

T = gguf.TokenType


@dataclass
class GgufVocab:
    model: str  # tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str  # tokenizer.ggml.pre
    tokens: list[str | bytes]
    types: list[int]
    scores: list[float] | None = None
    special: gguf.SpecialVocab | None = None
    add_bos: bool | None = None
    add_eos: bool | None = None
    extra: dict = field(default_factory=dict)

    def write(self, w: gguf.GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        if self.special is not None:
            self.special.add_to_gguf(w, quiet=True)
        # Written explicitly, from what the HF tokenizer really does, so llama.cpp neither
        # adds nor drops a BOS the model never saw in training.
        if self.add_bos is not None:
            w.add_add_bos_token(self.add_bos)
        if self.add_eos is not None:
            w.add_add_eos_token(self.add_eos)
        if self.model == "llama":
            w.add_add_space_prefix(self.extra.get("add_space_prefix", True))


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        raise ExportError(f"{path} is not valid JSON; re-save the tokenizer") from None


def _split_patterns(pre_tokenizer: dict | None) -> list[str]:
    if not pre_tokenizer:
        return []
    parts = pre_tokenizer.get("pretokenizers", [pre_tokenizer])
    return [p.get("pattern", {}).get("Regex", "") for p in parts if p.get("type") == "Split"]


def _has_digits_split(pre_tokenizer: dict | None) -> bool:
    parts = (pre_tokenizer or {}).get("pretokenizers", [pre_tokenizer or {}])
    return any(p.get("type") == "Digits" and p.get("individual_digits") for p in parts)


def bpe_pre_name(tokenizer: dict) -> str:
    """The llama.cpp pre-tokenizer that splits text like this tokenizer.json does."""
    pre = tokenizer.get("pre_tokenizer")
    patterns = _split_patterns(pre)
    if any(r"\p{N}{1,3}" in p for p in patterns):
        return "llama-bpe"  # Llama 3.x: digits in groups of up to three
    if any(r"\p{N}|" in p or r"\p{N}]|" in p for p in patterns):
        return "qwen2"  # Qwen2/2.5/3: one digit per piece
    vocab = tokenizer.get("model", {}).get("vocab", {})
    multi_digit = any(re.fullmatch(r"\u0120?[0-9]{2,}", tok) for tok in vocab)
    if _has_digits_split(pre) or (vocab and not patterns and not multi_digit):
        # SmolLM/SmolLM2: GPT-2 split with single digits. A byte-level vocab without any
        # multi-digit token splits digits one by one either way.
        return "smollm"
    if not patterns:
        return "gpt-2"
    raise ExportError(
        "the tokenizer's pre-tokenizer is not one the converter knows (llama-bpe, qwen2, smollm, gpt-2); "
        "it cannot be written so that llama.cpp splits text the same way"
    )


def _post_processor_flags(tokenizer: dict) -> tuple[bool, bool]:
    """Whether the HF tokenizer adds a special token at the start / end of a single text."""
    post = tokenizer.get("post_processor") or {}
    for proc in post.get("processors", [post]):
        if proc.get("type") == "TemplateProcessing":
            single = proc.get("single", [])
            return (
                bool(single) and "SpecialToken" in single[0],
                bool(single) and "SpecialToken" in single[-1],
            )
    return False, False


def _bpe_vocab(folder: Path, n_vocab: int) -> GgufVocab:
    tok = _json(folder / "tokenizer.json")
    model = tok.get("model", {})
    vocab: dict[str, int] = model.get("vocab", {})
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    by_id = {i: t for t, i in vocab.items()} | {i: a["content"] for i, a in added.items()}
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(T.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(T.CONTROL if added[i].get("special") else T.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(T.NORMAL)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=n_vocab)
    special.add_special_token = {}  # flags come from the post-processor below
    add_bos, add_eos = _post_processor_flags(tok)
    config = _json(folder / "tokenizer_config.json")
    add_bos = (
        config.get("add_bos_token", add_bos) if isinstance(config.get("add_bos_token"), bool) else add_bos
    )
    add_eos = (
        config.get("add_eos_token", add_eos) if isinstance(config.get("add_eos_token"), bool) else add_eos
    )
    return GgufVocab(
        "gpt2", bpe_pre_name(tok), tokens, [int(t) for t in types], None, special, add_bos, add_eos
    )


def _sentencepiece_vocab(folder: Path, n_vocab: int) -> GgufVocab:
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(folder / "tokenizer.model"))
    tokens: list[str | bytes] = [f"[PAD{i}]".encode() for i in range(n_vocab)]
    scores = [-1000.0] * n_vocab
    types = [int(T.UNUSED)] * n_vocab
    for i in range(min(sp.vocab_size(), n_vocab)):
        tokens[i] = sp.IdToPiece(i).encode("utf-8")
        scores[i] = sp.GetScore(i)
        types[i] = (
            T.UNKNOWN
            if sp.IsUnknown(i)
            else T.CONTROL
            if sp.IsControl(i)
            else T.UNUSED
            if sp.IsUnused(i)
            else T.BYTE
            if sp.IsByte(i)
            else T.NORMAL
        )
    # Tokens added on top of the SentencePiece model (chat markers) come from tokenizer.json.
    for a in _json(folder / "tokenizer.json").get("added_tokens", []):
        i = a["id"]
        if i < n_vocab and types[i] not in (T.UNKNOWN, T.BYTE):
            tokens[i] = a["content"].encode("utf-8")
            types[i] = T.CONTROL if a.get("special") else T.USER_DEFINED
            scores[i] = -1000.0
    special = gguf.SpecialVocab(folder, load_merges=False, n_vocab=n_vocab)
    config = _json(folder / "tokenizer_config.json")
    add_bos = config.get("add_bos_token", True)
    add_eos = config.get("add_eos_token", False)
    special.add_special_token = {}
    return GgufVocab("llama", "default", tokens, [int(t) for t in types], scores, special, add_bos, add_eos)


def _llama_hf_vocab(folder: Path, n_vocab: int) -> GgufVocab:
    """A SentencePiece-style BPE stored only as tokenizer.json (byte fallback, no tokenizer.model)."""
    hf = gguf.LlamaHfVocab(folder)
    tokens, scores, types = [], [], []
    for text, score, typ in hf.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(int(typ))
    for i in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{i}]".encode())
        scores.append(-1000.0)
        types.append(int(T.UNUSED))
    special = gguf.SpecialVocab(folder, load_merges=False, n_vocab=n_vocab)
    special.add_special_token = {}
    config = _json(folder / "tokenizer_config.json")
    add_bos, add_eos = _post_processor_flags(_json(folder / "tokenizer.json"))
    add_bos = config.get("add_bos_token", add_bos)
    return GgufVocab("llama", "default", tokens, types, scores, special, add_bos, add_eos)


def load_vocab(folder: Path, n_vocab: int) -> GgufVocab:
    """Read the tokenizer of an HF folder; ExportError when there is none or it is of an unknown kind."""
    folder = Path(folder)
    logging.getLogger("gguf").setLevel(logging.ERROR)
    tok_json = folder / "tokenizer.json"
    if (folder / "tokenizer.model").is_file():
        vocab = _sentencepiece_vocab(folder, n_vocab)
    elif tok_json.is_file():
        model = _json(tok_json).get("model", {})
        if model.get("type") == "BPE" and model.get("byte_fallback"):
            vocab = _llama_hf_vocab(folder, n_vocab)
        elif model.get("type") == "BPE":
            vocab = _bpe_vocab(folder, n_vocab)
        else:
            raise ExportError(
                f"{tok_json}: tokenizer model {model.get('type')!r} is not supported (BPE or SentencePiece)"
            )
    else:
        raise ExportError(
            f"{folder} has no tokenizer (tokenizer.json or tokenizer.model); copy the base model's tokenizer files into it"
        )
    if vocab.special is not None and vocab.special.chat_template is None:
        template = folder / "chat_template.jinja"
        if template.is_file():
            vocab.special.chat_template = template.read_text(encoding="utf-8")
    return vocab
