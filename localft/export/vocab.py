"""The tokenizer of an HF folder written into GGUF metadata so that llama.cpp tokenizes text exactly
like the HF tokenizer the model was trained with: tokens, types, merges or scores, the pre-tokenizer,
special ids, add-bos/eos and the chat template. A tokenizer llama.cpp cannot reproduce is refused."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import gguf

from localft.errors import ExportError
from localft.export.pretokenizers import pre_tokenizer_name
from localft.export.token_strip import strips_after_specials

T = gguf.TokenType
SPACE_MARK = "\u2581"  # SentencePiece's visible space
BYTE_TOKEN = re.compile(r"<0x[0-9A-F]{2}>")


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
    strips_after_specials: bool = False  # HF strips the whitespace after special tokens (see token_strip)

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


def not_reproducible(where: str, why: str) -> ExportError:
    """The one refusal for a tokenizer llama.cpp cannot reproduce: what, why, and what to do."""
    return ExportError(
        f"{where}: llama.cpp cannot tokenize text like this tokenizer ({why}), so the GGUF would not see "
        "the tokens the model was trained on; fine-tune a base model whose tokenizer llama.cpp reproduces "
        "(see `localft models`)"
    )


def hf_tokenizer(folder: Path):
    """The fast HF tokenizer of the folder, as training loaded it; ExportError when there is none."""
    folder = Path(folder)
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise ExportError(
            f"{folder} has no tokenizer (tokenizer.json or tokenizer.model); copy the base model's tokenizer files into it"
        )
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # any failure here comes from the folder's files
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(
            f"{folder}: transformers cannot load its tokenizer ({first_line}); copy the base model's tokenizer files into it"
        ) from None
    if getattr(tok, "backend_tokenizer", None) is None:
        raise ExportError(f"{folder}: the tokenizer has no tokenizer.json form, which the GGUF writer reads")
    return tok


# The tokenizer classes that run tokenizer.json as it is; every other class (Qwen2Tokenizer,
# LlamaTokenizer, ...) rebuilds its own split rules around the file's vocabulary when loaded.
FILE_AS_IS_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
# Model types for which transformers' AutoTokenizer keeps a folder's declared class. For others
# (qwen2, qwen3_5, ...) it puts its own class in place whatever the folder declares.
# tests/test_export_vocab.py checks both lists against transformers itself.
DECLARED_CLASS_KEPT = (
    "llama", "mistral", "qwen3", "qwen3_5_text", "phi3", "smollm3", "gemma3", "gemma3_text", "gemma4", "gemma4_text",
)  # fmt: skip


class TokenizerFile:
    """The folder's tokenizer.json read by the `tokenizers` library, with the BOS/EOS flags of
    tokenizer_config.json applied as transformers applies them: for a folder whose tokenizer class
    runs the file as it is, the same pipeline and ids as the HF tokenizer, without importing
    transformers and torch (2-3 s and ~300 MiB, more than converting a small model takes)."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer, processors

        path = Path(folder) / "tokenizer.json"
        try:
            self.backend_tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library's errors are plain Exceptions
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(
                f"{path} cannot be read ({first_line}); copy the base model's tokenizer files into the folder"
            ) from None
        config = _json_file(Path(folder) / "tokenizer_config.json")
        self.unk_token = _token_text(config.get("unk_token")) or _pipeline(self)["model"].get("unk_token")
        if "add_bos_token" in config or "add_eos_token" in config:
            # transformers then replaces the file's post-processor with BOS/EOS around each text.
            bos, eos = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
            add = [
                t
                for t, on in ((bos, config.get("add_bos_token")), (eos, config.get("add_eos_token")))
                if on and t
            ]
            ids = {t: self.backend_tokenizer.token_to_id(t) for t in add}
            if None in ids.values():
                raise ExportError(
                    f"{path.parent}: tokenizer_config.json names a BOS/EOS token the vocabulary lacks"
                )
            single = " ".join([f"{bos}:0"] * (bos in add) + ["$A:0"] + [f"{eos}:0"] * (eos in add))
            self.backend_tokenizer.post_processor = processors.TemplateProcessing(
                single=single, pair=f"{single} $B:1", special_tokens=list(ids.items())
            )

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids


def _json_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        raise ExportError(f"{path} is not valid JSON; re-save the tokenizer") from None


def _token_text(value) -> str | None:
    """A special token as tokenizer_config.json gives it: a string or an AddedToken dict."""
    return value.get("content") if isinstance(value, dict) else value


def folder_tokenizer(folder: Path):
    """The tokenizer as training loaded it: tokenizer.json through `tokenizers` where transformers runs
    that file as it is (no remote code), else transformers' own tokenizer (its class's rules, or its
    conversion of tokenizer.model). Verification compares the GGUF with transformers either way."""
    folder = Path(folder)
    config = _json_file(folder / "tokenizer_config.json")
    model_type = _json_file(folder / "config.json").get("model_type")
    as_is = (
        config.get("tokenizer_class") in FILE_AS_IS_CLASSES
        and "auto_map" not in config
        and model_type in DECLARED_CLASS_KEPT
        and (folder / "tokenizer.json").is_file()
    )
    return TokenizerFile(folder) if as_is else hf_tokenizer(folder)


def _pipeline(tok) -> dict:
    """The tokenizer as it really runs (a tokenizer class may replace parts of tokenizer.json)."""
    return json.loads(tok.backend_tokenizer.to_str())


def _steps(part: dict | None, key: str) -> list[dict]:
    if not part:
        return []
    return part.get(key, [part]) if part.get("type") == "Sequence" else [part]


def _merge_pairs(model: dict) -> list[tuple[str, str]]:
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model.get("merges", [])]


def _special_ids(folder: Path, n_vocab: int, *, merges: list[tuple[str, str]] | None) -> gguf.SpecialVocab:
    special = gguf.SpecialVocab(folder, load_merges=False, n_vocab=n_vocab)
    special.add_special_token = {}  # add-bos/eos are written from the tokenizer's behaviour
    if merges is not None:
        special.merges = [f"{a} {b}" for a, b in merges]
    return special


def _set_added_specials(vocab: GgufVocab, tok, where: str) -> None:
    """add_bos / add_eos from what the tokenizer adds around a text, and the ids it adds."""
    plain = list(tok.encode("a", add_special_tokens=False))
    full = list(tok.encode("a"))
    at = next((i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain), None)
    if at is None:
        raise not_reproducible(where, "adding special tokens changes the tokens of the text itself")
    before, after = full[:at], full[at + len(plain) :]
    ids = vocab.special.special_token_ids
    if len(before) > 1 or len(after) > 1 or (after and ids.get("eos") != after[0]):
        raise not_reproducible(
            where, f"it adds {before} before and {after} after every text, llama.cpp a BOS and an EOS"
        )
    if before:
        ids["bos"] = before[0]
    vocab.add_bos, vocab.add_eos = bool(before), bool(after)


def _tokens_by_id(model: dict, added: list[dict], n_vocab: int) -> list[tuple[str | None, dict | None]]:
    """(text, added-token entry) for each id below n_vocab; (None, None) where the id is unused."""
    by_id: dict[int, tuple[str | None, dict | None]] = {i: (t, None) for t, i in model["vocab"].items()}
    for a in added:
        by_id[a["id"]] = (a["content"], a)
    return [by_id.get(i, (None, None)) for i in range(n_vocab)]


def _byte_level_vocab(tok, pipeline: dict, folder: Path, n_vocab: int) -> GgufVocab:
    # llama.cpp does not normalize text. NFC (Qwen) is let through: text already in NFC, as nearly
    # all text is, tokenizes the same; decomposed accents do not (3 of llama.cpp's 51 qwen35 strings).
    for step in _steps(pipeline.get("normalizer"), "normalizers"):
        if step.get("type") != "NFC":
            raise not_reproducible(folder.name, f"its {step.get('type')} normalizer changes the text")
    tokens: list[str | bytes] = []
    types: list[int] = []
    for i, (text, added) in enumerate(_tokens_by_id(pipeline["model"], pipeline["added_tokens"], n_vocab)):
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(T.UNUSED)
        else:
            tokens.append(text)
            types.append(T.NORMAL if added is None else T.CONTROL if added["special"] else T.USER_DEFINED)
    pre, digest = pre_tokenizer_name(tok)
    if pre is None:
        raise not_reproducible(
            folder.name, f"llama.cpp does not know its pre-tokenizer, probe hash {digest[:16]}"
        )
    special = _special_ids(folder, n_vocab, merges=_merge_pairs(pipeline["model"]))
    return GgufVocab("gpt2", pre, tokens, [int(t) for t in types], None, special)


def sentencepiece_space_prefix(pipeline: dict, where: str) -> bool:
    """Whether llama.cpp must add a leading '▁' (add_space_prefix) to reproduce this tokenizer.

    llama.cpp turns every space into '▁' and, with add_space_prefix, puts one more '▁' before every
    text fragment (the start, and after each special token), even one that starts with a space. Two
    HF pipelines do exactly that: a `Prepend('▁')` normalizer, and transformers' SentencePiece
    conversion (a leading '▁' doubled, then Metaspace 'always'). Metaspace alone skips a text that
    starts with a space (and, with prepend_scheme 'first', text after special tokens): refused.
    """
    prepend = doubled = spaces_replaced = False
    for step in _steps(pipeline.get("normalizer"), "normalizers"):
        kind, pattern, content = step.get("type"), step.get("pattern"), step.get("content")
        if kind == "Prepend" and step.get("prepend") == SPACE_MARK:
            prepend = True
        elif kind == "Replace" and pattern == {"String": " "} and content == SPACE_MARK:
            spaces_replaced = True
        elif kind == "Replace" and pattern == {"Regex": rf"\A{SPACE_MARK}"} and content == 2 * SPACE_MARK:
            doubled = spaces_replaced  # a text that starts with a space keeps its extra '▁'
        else:
            raise not_reproducible(where, f"its {kind} normalizer changes the text")
    for step in _steps(pipeline.get("pre_tokenizer"), "pretokenizers"):
        kind, scheme = step.get("type"), step.get("prepend_scheme", "always")
        if kind == "Metaspace" and step.get("replacement") == SPACE_MARK and not step.get("split"):
            if (scheme, doubled, prepend) not in (("never", False, prepend), ("always", True, False)):
                raise not_reproducible(
                    where,
                    f"its Metaspace pre-tokenizer (prepend_scheme {scheme!r}) puts '▁' before a text only where "
                    "it does not start with a space, llama.cpp before every text and after every special token",
                )
            prepend, spaces_replaced = prepend or scheme == "always", True
        elif kind == "Split" and step.get("pattern") == {"String": " "} and spaces_replaced:
            continue  # the normalizer already turned every space into '▁': nothing left to split
        else:
            raise not_reproducible(where, f"its {kind} pre-tokenizer splits the text before BPE")
    if not spaces_replaced:
        raise not_reproducible(where, "it keeps spaces as they are, llama.cpp turns them into '▁'")
    if doubled and not prepend:
        raise not_reproducible(where, "it doubles a leading '▁' without adding one to other text")
    return prepend


def merge_scores(model: dict, where: str) -> dict[str, float]:
    """SentencePiece-style scores under which llama.cpp's merge order is the HF merge order.

    llama.cpp merges any two neighbours whose joined text is a token, the one with the highest score
    first; HF merges listed pairs, the lowest rank first. A token scores minus the rank of the first
    merge that makes it. That is exact when every pair of tokens that joins into a token is a listed
    merge, which SentencePiece-converted vocabularies satisfy; otherwise the tokenizer is refused.
    """
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise not_reproducible(where, f"its BPE model sets {key}")
    pairs = _merge_pairs(model)
    first_rank: dict[str, int] = {}
    for rank, (a, b) in enumerate(pairs):
        first_rank.setdefault(a + b, rank)
    listed = set(pairs)
    vocab = model["vocab"]
    for text in vocab:
        for cut in range(1, len(text)):
            left, right = text[:cut], text[cut:]
            if left in vocab and right in vocab and (left, right) not in listed:
                raise not_reproducible(
                    where, f"{left!r} + {right!r} make the token {text!r} but are not a merge"
                )
    return {text: -float(rank) for text, rank in first_rank.items()}


def _sentencepiece_vocab(tok, pipeline: dict, folder: Path, n_vocab: int) -> GgufVocab:
    """A SentencePiece-style BPE (byte fallback, '▁' for spaces) as llama.cpp's `llama` tokenizer."""
    where = folder.name
    model = pipeline["model"]
    add_space_prefix = sentencepiece_space_prefix(pipeline, where)
    missing = [f"<0x{b:02X}>" for b in range(256) if f"<0x{b:02X}>" not in model["vocab"]]
    if missing:
        raise not_reproducible(where, f"its byte fallback lacks {missing[0]}")
    scores = merge_scores(model, where)
    tokens: list[str | bytes] = []
    token_scores: list[float] = []
    types: list[int] = []
    for i, (text, added) in enumerate(_tokens_by_id(model, pipeline["added_tokens"], n_vocab)):
        if text is None:
            tokens.append(f"[PAD{i}]")
            token_scores.append(-1000.0)
            types.append(T.UNUSED)
            continue
        tokens.append(text)
        token_scores.append(scores.get(text, 0.0) if added is None else -1000.0)
        if added is not None:
            kind = T.UNKNOWN if text == tok.unk_token else T.CONTROL if added["special"] else T.USER_DEFINED
        else:
            kind = T.BYTE if BYTE_TOKEN.fullmatch(text) else T.NORMAL
        types.append(kind)
    special = _special_ids(folder, n_vocab, merges=None)
    return GgufVocab(
        "llama",
        "default",
        tokens,
        [int(t) for t in types],
        token_scores,
        special,
        extra={"add_space_prefix": add_space_prefix},
    )


def load_vocab(folder: Path, n_vocab: int, tok=None) -> GgufVocab:
    """Read the HF tokenizer of a folder (`tok`, when already loaded from it); ExportError when there
    is none, or llama.cpp cannot tokenize exactly like it."""
    folder = Path(folder)
    logging.getLogger("gguf").setLevel(logging.ERROR)
    tok = tok or folder_tokenizer(folder)
    pipeline = _pipeline(tok)
    kind = pipeline["model"].get("type")
    if kind != "BPE":
        raise ExportError(
            f"{folder.name}: tokenizer model {kind!r} is not supported (byte-level BPE or SentencePiece BPE)"
        )
    if pipeline["model"].get("byte_fallback"):
        vocab = _sentencepiece_vocab(tok, pipeline, folder, n_vocab)
    else:
        vocab = _byte_level_vocab(tok, pipeline, folder, n_vocab)
    _set_added_specials(vocab, tok, folder.name)
    added = pipeline["added_tokens"]
    vocab.strips_after_specials = strips_after_specials(
        added, vocab.tokens, vocab.types, folder.name, not_reproducible
    )
    if vocab.special is not None and vocab.special.chat_template is None:
        template = folder / "chat_template.jinja"
        if template.is_file():
            vocab.special.chat_template = template.read_text(encoding="utf-8")
    return vocab
