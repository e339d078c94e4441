"""Per catalog family: the merged tiny model of the family's real shape, tokenizer and template
(tests/tiny.py) converted to F16, Q8_0 and Q4_K_M, each judged as `localft export` judges a file:
top-1 agreement and perplexity change against HF on the bundled held-out text, tokenization parity
(held-out text, pre-tokenizer probe, a chat rendered by the template), the pre-tokenizer written,
and whether llama.cpp ends generation on the family's end-of-turn token.

    python bench/family_gguf.py [NAME ...]

Weights are random (no real checkpoint is at hand offline): top-1 on a near-uniform model is a
harsher test of quantization than on a trained one, so read Q4_K_M's figures as a floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_home import use_temporary_home  # noqa: E402

QUANTS = ("F16", "Q8_0", "Q4_K_M")


def end_of_turn_stops(gguf: Path, token: str) -> bool:
    """llama.cpp treats the family's end-of-turn token as end of generation."""
    import llama_cpp

    from localft.export.llamacpp import close_llama, load_llama

    llm = load_llama(gguf, n_ctx=64, vocab_only=True)
    try:
        ids = llm.tokenize(token.encode("utf-8"), add_bos=False, special=True)
        return len(ids) == 1 and bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, ids[0]))
    finally:
        close_llama(llm)


def measure(name: str, work: Path) -> list[str]:
    from gguf import GGUFReader

    from localft.export.gguf import convert_folder
    from localft.export.quantize import quantize_file
    from localft.export.verify import HfReference, bundled_text
    from tests.family_support import merged
    from tests.tiny import FAMILIES

    folder = merged(name)
    ref = HfReference(folder, bundled_text(), max_tokens=384)
    files = {q: convert_folder(folder, work / f"{name}-{q}.gguf", q).path for q in ("F16", "Q8_0")}
    files["Q4_K_M"] = quantize_file(files["F16"], work / f"{name}-Q4_K_M.gguf", "Q4_K_M")
    pre = GGUFReader(files["F16"]).fields["tokenizer.ggml.pre"].contents()
    stops = end_of_turn_stops(files["F16"], FAMILIES[name].end_of_turn)
    rows = []
    for quant in QUANTS:
        p = ref.compare(files[quant], quant)
        tokens = "yes" if p.tokenization_match else f"NO: {p.tokenization_diff}"
        rows.append(
            f"| {name} | {quant} | {pre} | {tokens} | {p.top1:.2%} | {p.ppl_change:+.3%} | "
            f"{'yes' if stops else 'NO'} | {p.passed if p.passed is not None else 'reported'} |"
        )
    return rows


def main() -> None:
    from tests.family_support import NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=NAMES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        use_temporary_home(Path(tmp))
        print(
            "| family | type | pre-tokenizer | tokenization = HF | top-1 | perplexity | stops on end-of-turn | target |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name in args.names:
            work = Path(tmp) / name
            work.mkdir()
            for row in measure(name, work):
                print(row, flush=True)


if __name__ == "__main__":
    main()
