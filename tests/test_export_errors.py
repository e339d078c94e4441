"""Bad input to the exporter: one clear error, and never a partial file under the final name."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple

import pytest

from localft.errors import DoesNotFit, ExportError
from localft.export import gguf as gguf_module
from localft.export.gguf import convert_folder
from localft.export.llamacpp import load_llama


@pytest.fixture
def model_copy(tiny_models, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_models("llama"), folder)
    return folder


def _only_final_or_nothing(folder):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_unsupported_architecture_names_it_and_the_supported_list(model_copy, tmp_path):
    config = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps(config | {"architectures": ["FalconForCausalLM"]}))
    with pytest.raises(ExportError) as err:
        convert_folder(model_copy, tmp_path / "out" / "m.gguf")
    message = str(err.value)
    assert "FalconForCausalLM" in message and "Gemma3ForCausalLM" in message and "Qwen3ForCausalLM" in message
    assert "\n" not in message
    assert _only_final_or_nothing(tmp_path / "out") == []


def test_missing_tokenizer(model_copy, tmp_path):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ExportError, match="no tokenizer"):
        convert_folder(model_copy, tmp_path / "out" / "m.gguf")
    assert _only_final_or_nothing(tmp_path / "out") == []


@pytest.mark.parametrize("damage", ["truncate", "header"])
def test_corrupted_safetensors(model_copy, tmp_path, damage):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        data[: len(data) // 2] if damage == "truncate" else data[:8] + b"{not json" + data[17:]
    )
    with pytest.raises(ExportError, match="truncated|corrupted"):
        convert_folder(model_copy, tmp_path / "out" / "m.gguf")
    assert _only_final_or_nothing(tmp_path / "out") == []


def test_not_enough_disk(model_copy, tmp_path, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(DoesNotFit, match="not enough disk"):
        convert_folder(model_copy, tmp_path / "out" / "m.gguf")
    assert _only_final_or_nothing(tmp_path / "out") == []


def test_failure_while_writing_leaves_no_partial_file(model_copy, tmp_path, monkeypatch):
    calls = []
    real = gguf_module.encode

    def encode_then_fail(data, qtype):
        calls.append(1)
        if len(calls) == 5:
            raise OSError("disk went away")
        return real(data, qtype)

    monkeypatch.setattr(gguf_module, "encode", encode_then_fail)
    with pytest.raises(OSError, match="disk went away"):
        convert_folder(model_copy, tmp_path / "out" / "m.gguf")
    assert _only_final_or_nothing(tmp_path / "out") == []


def test_gguf_that_fails_to_load(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    with pytest.raises(ExportError, match="failed to load"):
        load_llama(broken, log_path=tmp_path / "llama.log")
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ExportError, match="not a GGUF"):
        load_llama(text)
