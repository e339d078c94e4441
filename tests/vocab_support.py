"""Shared pieces for the tokenizer tests and bench/vocab_parity.py: real vocabularies as HF tokenizer
folders, vocab-only GGUFs written by localft, and llama.cpp tokenizing them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from localft.export.families import describe
from localft.export.gguf import FastGGUFWriter
from localft.export.llamacpp import close_llama, load_llama
from localft.export.vocab import hf_tokenizer, load_vocab
from tests.real_material import hf_tokenizer_dir, sentencepiece_bpe_tokenizer_dir
from tests.tiny import tiny_config

HF_ARCHITECTURES = {
    "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "phi3": "Phi3ForCausalLM", "gemma3": "Gemma3ForCausalLM",
}  # fmt: skip
# vocabulary -> (architecture of the vocab-only file, the tokenizer.ggml.pre to write: the one
# llama.cpp's own file carries, except qwen35, see test_qwen35_vocabulary_shares_qwen2s_probe_result)
VOCABS = {
    "gpt-2": ("llama", "gpt-2"),
    "llama-bpe": ("llama", "llama-bpe"),
    "qwen2": ("qwen2", "qwen2"),
    "qwen35": ("qwen2", "qwen2"),
    "phi-3": ("phi3", "default"),
    "smollm2": ("llama", "smollm"),  # the embedded model's tokenizer, on llama-bpe's test strings
    "gemma-4": ("gemma3", "default"),  # built from the file's tokens and merges (transformers cannot)
}
STRINGS_OF = {"smollm2": "llama-bpe"}  # a vocabulary without llama.cpp test strings of its own
# Where llama.cpp's own pre-tokenizer differs from HF's, whatever the file says: its smollm split
# isolates every number character (' ½' -> ' ', '½'), HF's SmolLM2 only ASCII digits (' ½' stays).
LLAMA_CPP_DIFFERS = {"smollm2": ["ied 4 ½ months"]}
CONVERSATION = [
    {"role": "system", "content": "You write short, plain answers."},
    {"role": "user", "content": "Where do the boats go at night?"},
    {"role": "assistant", "content": " Back to the harbour, before dawn.\n\nThen the 2 crews sleep."},
    {"role": "user", "content": "And in winter?"},
]


def faithful_llama3(folder: Path, out: Path) -> Path:
    """transformers' rebuild of Llama 3's vocabulary drops two things the original tokenizer.json has:
    `ignore_merges` and the BOS its post-processor adds. Put them back (llama.cpp's llama-bpe has both)."""
    shutil.copytree(folder, out)
    tok = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    tok["model"]["ignore_merges"] = True
    bos = {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]}},
    }  # fmt: skip
    (out / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    return out


def tokenizer_folder(name: str, tmp_path: Path) -> Path:
    if name == "smollm2":
        from localft.plan.catalog import embedded_model_dir

        return embedded_model_dir()
    if name == "gemma-4":
        return sentencepiece_bpe_tokenizer_dir(name, "GemmaTokenizer")
    folder = hf_tokenizer_dir(name)
    return faithful_llama3(folder, tmp_path / name) if name == "llama-bpe" else folder


def write_vocab_only(tok_dir: Path, arch: str, out: Path, tok=None) -> Path:
    """A GGUF holding a tiny `arch` model's parameters and the folder's tokenizer as localft writes it,
    without tensors: llama.cpp loads it with vocab_only to tokenize."""
    tok = tok or hf_tokenizer(tok_dir)
    config = tiny_config(arch, len(tok)).to_dict() | {"architectures": [HF_ARCHITECTURES[arch]]}
    desc = describe(config)
    writer = FastGGUFWriter(out, desc.gguf_name)
    desc.write_params(writer, config)
    load_vocab(tok_dir, len(tok), tok).write(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return out


def metadata(path: Path) -> dict[str, str]:
    """The file's scalar metadata as llama.cpp reads it (gguf-py's reader takes seconds on a big vocab)."""
    llm = load_llama(path, vocab_only=True)
    try:
        return dict(llm.metadata)
    finally:
        close_llama(llm)


def llama_cpp_ids(path: Path, texts: list[str], *, add_special: bool = False) -> list[list[int]]:
    """llama.cpp's ids for each text (the last one also with BOS/EOS added where the file says so),
    finding special tokens written in the text as HF does."""
    llm = load_llama(path, vocab_only=True)
    try:
        ids = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
        if add_special:
            ids.append(llm.tokenize(texts[-1].encode("utf-8"), add_bos=True, special=True))
        return ids
    finally:
        close_llama(llm)
