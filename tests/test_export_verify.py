"""verify compares tokenization: a GGUF whose vocabulary splits text differently from the HF tokenizer
fails, with the first differing position, even though the logits of the same ids still agree."""

from __future__ import annotations

import io

import pytest

from localft.export import vocab as vocab_module
from localft.export.gguf import convert_folder
from localft.export.llamacpp import close_llama, load_llama
from localft.export.verify import HfReference, bundled_text
from tests.real_material import hf_tokenizer_dir
from tests.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny_with_vocab(tmp_path_factory):
    """vocabulary -> (a tiny random model with that real vocabulary, HF's reference on the prose)."""
    built = {}

    def get(name: str):
        if name not in built:
            arch = {"phi-3": "phi3"}.get(name, "llama")
            folder = build_tiny_model(tmp_path_factory.mktemp(name) / "model", arch, hf_tokenizer_dir(name))
            built[name] = folder, HfReference(folder, bundled_text(), max_tokens=256)
        return built[name]

    return get


@pytest.mark.parametrize("name", ["gpt-2", "phi-3"])
def test_faithful_gguf_passes_with_the_same_tokens(name, tiny_with_vocab, tmp_path):
    """Byte-level BPE (GPT-2) and a tokenizer.json-only SentencePiece (Phi-3, whose template's chat
    markers are checked too): the same ids in llama.cpp as in HF, and the parity targets met."""
    folder, ref = tiny_with_vocab(name)
    assert ("chat rendered by its template" in ref.tokenized) == (name == "phi-3")
    out = convert_folder(folder, tmp_path / "m-F32.gguf", "F32")
    parity = ref.compare(out.path, "F32")
    assert parity.tokenization_match and parity.tokenization_diff is None
    assert parity.passed is True and parity.problem is None


def test_wrong_pre_tokenizer_fails_verify_at_the_first_differing_token(
    tiny_with_vocab, tmp_path, monkeypatch
):
    """Llama 3's split rule forced onto GPT-2's vocabulary: every id still exists, so logits of HF's
    ids agree (the old check passed it), but llama.cpp reads the text as other tokens (at the first blank line)."""
    folder, ref = tiny_with_vocab("gpt-2")
    monkeypatch.setattr(vocab_module, "pre_tokenizer_name", lambda tok: ("llama-bpe", "forced"))
    out = convert_folder(folder, tmp_path / "wrong-F32.gguf", "F32")

    parity = ref.compare(out.path, "F32")
    assert parity.top1 >= 0.99  # the same ids on both sides still agree
    assert not parity.tokenization_match and parity.passed is False

    hf_ids = ref.tokenizer(bundled_text())["input_ids"]
    llm = load_llama(out.path, vocab_only=True)
    try:
        ours = llm.tokenize(bundled_text().encode(), add_bos=True, special=True)
    finally:
        close_llama(llm)
    first = next(i for i, (a, b) in enumerate(zip(hf_ids, ours, strict=False)) if a != b)
    diff = parity.tokenization_diff
    assert f"at token {first} of {len(hf_ids)} in the held-out text" in diff
    assert f"HF {hf_ids[first : first + 4]}, llama.cpp {ours[first : first + 4]}" in diff
    assert ref.tokenizer.decode(hf_ids[first - 3 : first]) in diff  # the text just before it
    assert parity.problem.startswith("F32: tokenization differs from HF at token")
    assert "\n" not in parity.problem


def test_chat_markers_written_as_plain_text_fail_verify_in_the_rendered_chat(
    tiny_with_vocab, tmp_path, monkeypatch
):
    """Phi-3's chat markers written as ordinary tokens: prose and probe still tokenize alike, but
    llama.cpp spells '<|user|>' out letter by letter in a chat, so verify fails the file there."""
    folder, ref = tiny_with_vocab("phi-3")
    plain = vocab_module._tokens_by_id
    monkeypatch.setattr(vocab_module, "_tokens_by_id", lambda *a: [(text, None) for text, _ in plain(*a)])
    out = convert_folder(folder, tmp_path / "markers-F32.gguf", "F32")
    parity = ref.compare(out.path, "F32")
    assert parity.passed is False
    assert "in the chat rendered by its template" in parity.tokenization_diff


def test_export_report_prints_the_tokenization_difference():
    from rich.console import Console

    from localft.cli.export import print_report
    from localft.export.pipeline import ExportedFile, ExportReport

    diff = "tokenization differs from HF at token 7 of 90 in the held-out text: HF [1], llama.cpp [2], text 'a' | '[b]'"
    parity = {
        "top1": 1.0,
        "ppl_hf": 9.0,
        "ppl_gguf": 9.0,
        "ppl_change": 0.0,
        "passed": False,
        "tokenization_diff": diff,
    }
    report = ExportReport("src", "out", "m", files=[ExportedFile("out/m-F16.gguf", "F16", 10, parity)])
    console = Console(file=io.StringIO(), width=300)
    print_report(report, console)
    printed = console.file.getvalue()
    assert "FAIL" in printed and f"F16: {diff}" in printed and "top-1 >= 99%" in printed
