"""Tokenizers written into GGUF, checked on llama.cpp's own material: real vocabularies rebuilt as HF
tokenizers, llama.cpp's tokenizer test strings, and llama.cpp itself tokenizing what localft wrote."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest

from localft.errors import ExportError
from localft.export.pretokenizers import PROBE_TEXT
from localft.export.verify import bundled_text
from localft.export.vocab import (
    DECLARED_CLASS_KEPT,
    FILE_AS_IS_CLASSES,
    TokenizerFile,
    folder_tokenizer,
    hf_tokenizer,
    load_vocab,
)
from tests.real_material import hf_tokenizer_dir, vocab_cases
from tests.vocab_support import (
    CONVERSATION,
    LLAMA_CPP_DIFFERS,
    STRINGS_OF,
    VOCABS,
    llama_cpp_ids,
    metadata,
    tokenizer_folder,
    write_vocab_only,
)


# gemma-4's 262k tokens and 515k merges take about 15 s: slow.
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "gemma-4" else n for n in VOCABS]
)
def test_written_vocabulary_tokenizes_like_hf_in_llama_cpp(name, tmp_path):
    """Every llama.cpp test string, the probe text, the bundled prose and a chat rendered by the
    tokenizer's own template: llama.cpp gives the ids HF gives, with HF's BOS/EOS."""
    from transformers import AutoTokenizer

    arch, pre = VOCABS[name]
    folder = tokenizer_folder(name, tmp_path)
    hf = AutoTokenizer.from_pretrained(folder)
    gguf = write_vocab_only(folder, arch, tmp_path / f"{name}.gguf", hf)
    assert metadata(gguf)["tokenizer.ggml.pre"] == pre
    # llama.cpp does not normalize: Qwen's NFC normalizer makes HF differ on decomposed accents only.
    strings = vocab_cases(STRINGS_OF.get(name, name))
    cases = [(text, ids) for text, ids in strings if unicodedata.is_normalized("NFC", text)]
    texts = [text for text, _ in cases] + [PROBE_TEXT, bundled_text()]
    if hf.chat_template:  # chat markers written in the text, and the text around them
        texts.append(hf.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True))
    *plain, with_specials = llama_cpp_ids(gguf, [*texts, bundled_text()], add_special=True)
    differing = [
        text for i, text in enumerate(texts) if plain[i] != hf.encode(text, add_special_tokens=False)
    ]
    assert differing == LLAMA_CPP_DIFFERS.get(name, []), f"llama.cpp differs on {[t[:40] for t in differing]}"
    if name not in STRINGS_OF:  # the same ids as llama.cpp's own file where the HF rebuild agrees with it
        agree = [i for i, (text, ids) in enumerate(cases) if hf.encode(text, add_special_tokens=False) == ids]
        assert len(agree) >= len(cases) - 3 and all(plain[i] == cases[i][1] for i in agree)
    assert with_specials == hf.encode(bundled_text())  # BOS (phi-3, llama-bpe) or none (qwen2, gpt-2)


def test_rebuilt_llama3_without_bos_or_ignore_merges_is_told_apart():
    """transformers' plain rebuild of Llama 3's vocabulary adds no BOS and merges whole words: llama.cpp
    knows that tokenizer as smaug-bpe (Llama 3's split, no BOS, merges always), and so does localft."""
    folder = hf_tokenizer_dir("llama-bpe")
    vocab = load_vocab(folder, 128256)
    assert (vocab.pre, vocab.add_bos) == ("smaug-bpe", False)


def test_qwen35_vocabulary_shares_qwen2s_probe_result():
    """llama.cpp's qwen35 test file carries Qwen2's vocabulary with Qwen3.5's split rule; on that
    vocabulary the probe text gives Qwen2's ids, so llama.cpp's own converter would name it qwen2
    too (the real Qwen3.5 vocabulary is larger and hashes to qwen35). The two rules tokenize all of
    llama.cpp's qwen35 strings alike here (the test above), so nothing is lost on this file."""
    from localft.export.pretokenizers import pre_tokenizer_name

    assert pre_tokenizer_name(hf_tokenizer(hf_tokenizer_dir("qwen35")))[0] == "qwen2"


def test_unknown_pre_tokenizer_is_refused_with_its_probe_hash(tmp_path):
    """GPT-2's vocabulary with Llama 3's split rule: a pairing llama.cpp has no name for. Writing any
    known name would split text differently from the HF tokenizer, so the converter refuses."""
    folder = shutil.copytree(hf_tokenizer_dir("gpt-2"), tmp_path / "gpt2-split")
    tok = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    regex = json.loads((hf_tokenizer_dir("qwen2") / "tokenizer.json").read_text(encoding="utf-8"))
    tok["pre_tokenizer"] = regex["pre_tokenizer"]
    (folder / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["tokenizer_class"] = "TokenizersBackend"  # GPT2Tokenizer would put GPT-2's split back
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ExportError, match="does not know its pre-tokenizer, probe hash [0-9a-f]{16}") as err:
        load_vocab(folder, 50257)
    assert "\n" not in str(err.value) and "localft models" in str(err.value)


def test_qwen2_folder_with_another_familys_tokenizer_json_is_refused(tiny_models):
    """transformers tokenizes a qwen2-type folder with Qwen2's own split rule and NFC, whatever its
    tokenizer.json says: SmolLM2's vocabulary under Qwen2's rules is a pairing llama.cpp has no name
    for (the old regex guess wrote `smollm`, the tokenizer.json's rule, not the one training used)."""
    from transformers import AutoTokenizer

    folder = tiny_models("qwen2")
    assert type(AutoTokenizer.from_pretrained(folder)).__name__ == "Qwen2Tokenizer"
    with pytest.raises(ExportError, match="does not know its pre-tokenizer"):
        load_vocab(folder, 49152)


def test_sentencepiece_json_without_leading_space_rule_llama_cpp_has_is_refused():
    """Llama 2's vocabulary rebuilt by transformers: its Metaspace pre-tokenizer puts no '▁' before a
    text that starts with a space, llama.cpp always does (and its own file is built that way), so
    ' Hello' cannot come out the same. The converter says so instead of writing a different file."""
    from transformers import AutoTokenizer

    folder = hf_tokenizer_dir("llama-spm")
    hf = AutoTokenizer.from_pretrained(folder)
    expected = dict(vocab_cases("llama-spm"))[" Hello"]  # llama.cpp's ids for ' Hello'
    assert hf.encode(" Hello", add_special_tokens=False) != expected
    with pytest.raises(ExportError, match="Metaspace pre-tokenizer \\(prepend_scheme 'first'\\)") as err:
        load_vocab(folder, 32000)
    assert "\n" not in str(err.value)


def train_sentencepiece(folder: Path, model_type: str, **options) -> Path:
    """A small SentencePiece BPE model (tokenizer.model only) in an HF folder of `model_type`."""
    sentencepiece = pytest.importorskip("sentencepiece")
    folder.mkdir()
    corpus = folder.parent / "corpus.txt"
    corpus.write_text(bundled_text() * 3, encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "tokenizer"), vocab_size=400, model_type="bpe",
        byte_fallback=True, minloglevel=2, **options,
    )  # fmt: skip
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder


# SentencePiece options as the two families train them: Gemma (no leading '▁'), Llama (a leading '▁').
SENTENCEPIECE_KINDS = {
    "gemma": ("gemma3_text", "gemma3", False, dict(
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", add_dummy_prefix=False, normalization_rule_name="identity")),
    "llama": ("llama", "llama", True, dict(
        bos_id=1, eos_id=2, unk_id=0, normalization_rule_name="identity", remove_extra_whitespaces=False)),
}  # fmt: skip


@pytest.mark.parametrize("kind", SENTENCEPIECE_KINDS)
def test_sentencepiece_model_is_written_exactly(kind, tmp_path):
    """tokenizer.model only, as transformers 5 converts it (Gemma's class: spaces become '▁', nothing
    before the text; Llama's: a leading '▁' doubled, then one before every text): written as llama.cpp's
    `llama` tokenizer with or without a space prefix and scores from HF's merge order, it tokenizes the
    bundled prose, the probe and llama.cpp's strings (leading spaces included) like HF."""
    from transformers import AutoTokenizer

    model_type, arch, space_prefix, options = SENTENCEPIECE_KINDS[kind]
    folder = train_sentencepiece(tmp_path / kind, model_type, **options)
    hf = AutoTokenizer.from_pretrained(folder)
    gguf = write_vocab_only(folder, arch, tmp_path / f"{kind}.gguf", hf)
    written = metadata(gguf)
    assert written["tokenizer.ggml.model"] == "llama"
    assert written["tokenizer.ggml.add_space_prefix"] == str(space_prefix).lower()
    texts = [PROBE_TEXT, bundled_text()] + [text for text, _ in vocab_cases("llama-spm")]
    *plain, with_specials = llama_cpp_ids(gguf, texts, add_special=True)
    assert [i for i, t in enumerate(texts) if plain[i] != hf.encode(t, add_special_tokens=False)] == []
    assert with_specials == hf.encode(texts[-1])


def test_sentencepiece_model_that_normalizes_text_is_refused(tmp_path):
    """SentencePiece's default normalization (NFKC, extra spaces removed) runs in HF, never in llama.cpp."""
    folder = train_sentencepiece(tmp_path / "nfkc", "llama", bos_id=1, eos_id=2, unk_id=0)
    with pytest.raises(ExportError, match="normalizer changes the text") as err:
        load_vocab(folder, 400)
    assert "localft models" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("model_type", [*DECLARED_CLASS_KEPT, "qwen2", "qwen3_5"])
def test_tokenizer_json_is_read_directly_only_where_transformers_runs_it_as_is(model_type, tmp_path):
    """The converter reads tokenizer.json itself (no transformers or torch import) only where
    transformers' AutoTokenizer keeps the folder's file-as-is class; for qwen2 and qwen3_5 it puts
    its own class (and split rules) in place, so the converter loads transformers' tokenizer there."""
    from transformers import AutoTokenizer

    from localft.plan.catalog import embedded_model_dir

    folder = shutil.copytree(
        embedded_model_dir(), tmp_path / model_type, ignore=shutil.ignore_patterns("*.safetensors")
    )
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": model_type}))
    kept = type(AutoTokenizer.from_pretrained(folder)).__name__ in FILE_AS_IS_CLASSES
    assert kept == (model_type in DECLARED_CLASS_KEPT)
    assert isinstance(folder_tokenizer(folder), TokenizerFile) == kept


@pytest.mark.parametrize("name", ["smollm2", "llama-bpe", "phi-3"])
def test_tokenizer_json_read_directly_gives_the_vocabulary_transformers_gives(name, tmp_path):
    """The same GGUF vocabulary (tokens, types, scores, merges, pre-tokenizer, special ids, BOS/EOS)
    from tokenizer.json read by `tokenizers` as from transformers' tokenizer of the same folder:
    SmolLM2 (no BOS), Llama 3 (BOS from the post-processor), Phi-3 (SentencePiece, BOS from
    tokenizer_config.json's add_bos_token)."""
    from transformers import AutoTokenizer

    folder = tokenizer_folder(name, tmp_path)
    hf = AutoTokenizer.from_pretrained(folder)
    direct, through_hf = (load_vocab(folder, len(hf), tok) for tok in (TokenizerFile(folder), hf))
    for key in ("model", "pre", "tokens", "types", "scores", "add_bos", "add_eos", "extra"):
        assert getattr(direct, key) == getattr(through_hf, key), key
    assert direct.special.special_token_ids == through_hf.special.special_token_ids
    assert direct.special.merges == through_hf.special.merges
    assert TokenizerFile(folder).encode(PROBE_TEXT) == hf.encode(PROBE_TEXT)
