"""Whitespace after special tokens: llama.cpp strips it by the model's name (its Phi-3 rule), HF by
each added token's flags. Real Phi-3 vocabulary (llama.cpp's test material, tokenizer.json only),
real Phi-3.5 chat template, a tiny Phi-3 converted by localft and tokenized by llama.cpp."""

from __future__ import annotations

import json
import shutil

import pytest

from localft.errors import ExportError
from localft.export.gguf import convert_folder
from localft.export.token_strip import phi3_rule_strips
from tests.real_material import hf_tokenizer_dir, template
from tests.tiny import build_tiny_model
from tests.vocab_support import CONVERSATION, llama_cpp_ids, metadata


def phi3_model(tmp_path, folder_name: str, rstrip=frozenset()):
    """A tiny Phi-3 with the real Phi-3 vocabulary and chat template; `rstrip`: the added tokens
    whose tokenizer.json entry strips the whitespace after them."""
    tokenizer = shutil.copytree(hf_tokenizer_dir("phi-3"), tmp_path / "tokenizer")
    (tokenizer / "chat_template.jinja").write_text(template("microsoft-Phi-3.5-mini-instruct"))
    model = build_tiny_model(tmp_path / folder_name, "phi3", tokenizer)
    data = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    for added in data["added_tokens"]:
        added["rstrip"] = added["content"] in rstrip
    (model / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return model


def chat_ids(model, gguf):
    """(HF's ids, llama.cpp's ids) of a chat rendered by the model's template."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(model)
    chat = hf.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True)
    return hf.encode(chat, add_special_tokens=False), llama_cpp_ids(gguf, [chat])[0]


def test_phi3_named_folder_keeps_the_newlines_hf_keeps(tmp_path):
    """Issue 24 5(b): a folder named like a Phi-3 model whose tokenizer strips nothing. Written under
    its own name, llama.cpp's Phi-3 rule dropped the newline after every <|end|>, <|user|>, ... and the
    chat tokenized differently; the name written keeps the rule off."""
    model = phi3_model(tmp_path, "Phi-3.5-mini-instruct")
    out = convert_folder(model, tmp_path / "phi3.gguf", "F16").path
    assert metadata(out)["general.name"] == "Phi 3.5-mini-instruct"
    hf, llama = chat_ids(model, out)
    assert llama == hf


def test_tokenizer_stripping_after_every_special_token_gets_llama_cpps_phi3_rule(tmp_path):
    """A Phi-3 tokenizer.json that strips the whitespace after every special token (as llama.cpp's
    Phi-3 rule does), in a folder named `merged`: the name written turns the rule on."""
    probe = phi3_model(tmp_path / "probe", "probe")
    data = json.loads((probe / "tokenizer.json").read_text(encoding="utf-8"))
    tokens = {a["content"]: a for a in data["added_tokens"]}
    everything = [*data["model"]["vocab"], *tokens]
    types = [3 if t in tokens else 1 for t in everything]  # CONTROL for added tokens, as written
    rule = phi3_rule_strips(everything, types)
    assert rule and "<|end|>" in rule and "<s>" not in rule
    model = phi3_model(tmp_path, "merged", rule)
    out = convert_folder(model, tmp_path / "phi3.gguf", "F16").path
    assert metadata(out)["general.name"] == "merged (phi3)"
    hf, llama = chat_ids(model, out)
    assert llama == hf
    assert len(hf) < len(chat_ids(probe, convert_folder(probe, tmp_path / "p.gguf", "F16").path)[0])


def test_stripping_llama_cpp_cannot_do_is_refused(tmp_path):
    model = phi3_model(tmp_path, "merged", frozenset({"<|end|>"}))
    with pytest.raises(ExportError, match="strips the whitespace after '<|end|>'"):
        convert_folder(model, tmp_path / "phi3.gguf", "F16")
