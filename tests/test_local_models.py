"""Ollama's store and LM Studio's models folder holding the embedded model's real GGUF: listed with
what their metadata says, named as base models, trained on; files transformers cannot read refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from localft.errors import ModelError
from localft.paths import runs_dir
from localft.plan.catalog import embedded_gguf_path
from localft.plan.local_models import find_local_model, local_models, parse_ollama_name
from tests.command_support import localft, only_run
from tests.local_store import EXPORT, add_lmstudio_model, add_ollama_model


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """HOME with an Ollama store ($OLLAMA_MODELS) and LM Studio's folder named by its settings.json."""
    home = tmp_path / "user"
    ollama, lmstudio = home / "ollama-models", home / "lm-models"
    (home / ".lmstudio").mkdir(parents=True)
    (home / ".lmstudio" / "settings.json").write_text(json.dumps({"downloadsFolder": str(lmstudio)}))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    gguf = embedded_gguf_path()
    add_ollama_model(ollama, gguf, "smollm2:135m")
    add_ollama_model(ollama, gguf, "someone/smollm2")  # a user's namespace, the default tag
    add_lmstudio_model(lmstudio, gguf, "HuggingFaceTB", "SmolLM2-135M-Instruct-GGUF")
    # A vision projector beside a model is no model of its own.
    (lmstudio / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / "mmproj-model-f16.gguf").write_bytes(b"GGUF")
    return {"home": home, "ollama": ollama, "lmstudio": lmstudio}


def write_gguf(path: Path, arch: str, tensor_type: str = "F32") -> Path:
    """A small real GGUF (gguf-py's writer): a chat template and one tensor of `tensor_type`."""
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_chat_template("{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}")
    qtype = gguf.GGMLQuantizationType[tensor_type]
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor("blk.0.ffn_down.weight", np.zeros((4, 256), dtype=np.float32))
    else:  # raw bytes of 4 rows of 256 values each
        data = np.zeros((4, 256 // block * type_size), dtype=np.uint8)
        writer.add_tensor("blk.0.ffn_down.weight", data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_both_apps_models_are_listed_with_their_metadata(stores):
    found = {m.id: m for m in local_models()}
    assert sorted(found) == [
        "lmstudio:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        "ollama:smollm2:135m",
        "ollama:someone/smollm2:latest",
    ]
    model = found["ollama:smollm2:135m"]
    assert model.gguf.parent == stores["ollama"] / "blobs" and model.gguf.name.startswith("sha256-")
    assert (model.info.architecture, model.info.quantization) == ("llama", "Q4_1")
    assert 134e6 < model.info.params < 136e6  # SmolLM2-135M, counted from the tensors
    assert "<|im_start|>" in model.info.chat_template
    assert model.stops == ("<|im_start|>", "<|im_end|>")  # Ollama's params layer
    studio = found["lmstudio:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"].info
    assert (studio.architecture, studio.quantization, studio.params) == ("llama", "Q4_1", model.info.params)
    # The default tag and namespace, as Ollama fills them in.
    assert find_local_model("ollama:someone/smollm2").id == "ollama:someone/smollm2:latest"
    assert parse_ollama_name("qwen3") == ("registry.ollama.ai", "library", "qwen3", "latest")
    assert parse_ollama_name("host.io/ns/m:q8") == ("host.io", "ns", "m", "q8")


@pytest.mark.slow
def test_models_local_prints_them(stores):
    shown = localft("models", "--local", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["id"]: r for r in json.loads(shown.stdout)}
    assert rows["ollama:smollm2:135m"]["trainable"] and rows["ollama:smollm2:135m"]["quantization"] == "Q4_1"
    table = localft("models", "--local")
    assert "ollama:smollm2:135m" in table.stdout and "chatml" in table.stdout


def test_a_model_not_there_names_what_is(stores):
    with pytest.raises(ModelError, match=r"ollama:qwen3:1.7b is not in Ollama's store .*smollm2:135m"):
        find_local_model("ollama:qwen3:1.7b")


REFUSED = [("rwkv7", "F32", "architecture 'rwkv7'"), ("llama", "Q8_K", "quantization Q8_K")]


@pytest.mark.parametrize(("arch", "tensor_type", "named"), REFUSED)
def test_a_file_transformers_cannot_read_is_refused_before_it_is_prepared(
    stores, tmp_path, arch, tensor_type, named
):
    from localft.paths import cache_dir
    from localft.plan.catalog import resolve_model

    gguf = write_gguf(tmp_path / f"{arch}.gguf", arch, tensor_type)
    add_ollama_model(stores["ollama"], gguf, f"odd-{arch}")
    with pytest.raises(ModelError, match=f"^ollama:odd-{arch}: {named} cannot be"):
        resolve_model(f"ollama:odd-{arch}")
    local = cache_dir() / "models" / "local"
    assert not local.exists() or not [p for p in local.iterdir() if p.name.startswith(f"odd-{arch}")]


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "tensor_type", "named"), REFUSED)
def test_a_file_transformers_cannot_read_is_refused_before_anything_is_written(
    stores, tmp_path, arch, tensor_type, named
):
    gguf = write_gguf(tmp_path / f"{arch}.gguf", arch, tensor_type)
    add_ollama_model(stores["ollama"], gguf, f"odd-{arch}:{tensor_type.lower()}")
    result = localft("train", EXPORT, "--model", f"ollama:odd-{arch}:{tensor_type.lower()}", "--steps", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert not runs_dir().exists() or not any(runs_dir().iterdir())
    listed = {r["id"]: r for r in json.loads(localft("models", "--local", "--json").stdout)}
    assert named in listed[f"ollama:odd-{arch}:{tensor_type.lower()}"]["problem"]


@pytest.mark.slow
def test_a_run_trains_on_the_ollama_model_without_a_download(stores):
    result = localft(
        "train", EXPORT, "--model", "ollama:smollm2:135m", "--steps", "2", "--set", "max_seq_len=128",
        "--set", "save_every=2", "--set", "eval_every=2", env={"HF_HUB_OFFLINE": "1"}, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    run = only_run()
    assert (run.adapter_dir / "adapter_config.json").is_file()
    assert run.read_spec().model == "ollama:smollm2:135m"


def test_the_new_run_form_offers_them_without_preparing_one(stores):
    from localft.tui.run_setup import local_choices, model_on_disk

    choices = dict((value, label) for label, value in local_choices())
    assert choices["ollama:smollm2:135m"] == "ollama:smollm2:135m (135M Q4_1)"
    # Not dequantized yet: the form previews the data without token statistics instead of
    # spending a minute per billion parameters in the dashboard.
    # (A name no other test trains on: prepared models are shared between tests.)
    add_ollama_model(stores["ollama"], embedded_gguf_path(), "smollm2:form-only")
    assert not model_on_disk("ollama:smollm2:form-only")


def test_the_header_is_read_as_gguf_py_reads_it_without_the_vocabulary(tmp_path):
    """The listing's own reader against gguf-py's on the embedded model's real file: every scalar
    and string the same, arrays by their length, the same tensors; a cut file is one ModelError."""
    import gguf

    from localft.plan.gguf_base import read_gguf_info
    from localft.plan.gguf_header import read_gguf_header

    path = embedded_gguf_path()
    header, reader = read_gguf_header(path), gguf.GGUFReader(path)
    assert header.metadata.keys() == {k for k in reader.fields if not k.startswith("GGUF.")}
    for key, value in header.metadata.items():
        field = reader.fields[key]
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            assert value == len(field.data), key
        else:
            assert value == field.contents(), key
    assert header.metadata["tokenizer.ggml.tokens"] == 49152  # the vocabulary, by its length only
    assert [(t.name, t.type_id, t.n_elements) for t in header.tensors] == [
        (t.name, int(t.tensor_type), int(t.n_elements)) for t in reader.tensors
    ]
    for size, why in ((1 << 20, "header ends early"), (path.stat().st_size - 1, "tensor data ends early")):
        cut = tmp_path / "cut.gguf"  # in the vocabulary; a download one byte short
        cut.write_bytes(path.read_bytes()[:size])
        with pytest.raises(ModelError, match=f"is not a readable GGUF file .*{why}"):
            read_gguf_info(cut)
    # A header whose array claims 2**60 values is refused at once, not walked.
    import struct

    lying = tmp_path / "lying.gguf"
    lying.write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"a" + struct.pack("<IIQ", 9, 4, 2**60))
    with pytest.raises(ModelError, match="an array runs past the end of the file"):
        read_gguf_info(lying)


def test_the_supported_architectures_are_transformers_own_list():
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    from localft.plan.gguf_base import gguf_architectures

    assert gguf_architectures() == list(GGUF_SUPPORTED_ARCHITECTURES) and "llama" in gguf_architectures()
