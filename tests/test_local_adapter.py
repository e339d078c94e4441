"""A run trained on an Ollama model (an F16 copy of the embedded model in a real store layout)
exported as an adapter alone: the LoRA GGUF, a Modelfile on the user's model, and llama.cpp's
base + adapter matching the HF merged model."""

from __future__ import annotations

import json

import pytest

from localft.config import ExportSpec
from tests.command_support import localft
from tests.local_store import add_lmstudio_model, add_ollama_model, embedded_as, train_short_run
from tests.test_local_models import stores  # noqa: F401  (the fixture)


@pytest.mark.slow
def test_a_run_on_an_ollama_model_exports_its_adapter_for_that_model(stores, tmp_path):  # noqa: F811
    # An F16 base: the embedded model's Q4_1 file dequantized, written back as F16.
    f16 = embedded_as("F16", tmp_path / "f16")
    add_ollama_model(stores["ollama"], f16, "smollm2:135m-f16")
    add_lmstudio_model(stores["lmstudio"], f16, "localft", "smollm2-f16")
    run = train_short_run("ollama:smollm2:135m-f16")

    exported = localft("export", run.id, timeout=900)  # --adapter-only is the default for this run
    assert exported.returncode == 0, exported.stdout + exported.stderr
    adapter, modelfile = run.gguf_dir / "adapter.gguf", run.gguf_dir / "Modelfile"
    assert adapter.is_file() and not list(run.gguf_dir.glob("*-F16.gguf"))  # no copy of the base
    lines = modelfile.read_text().splitlines()
    assert lines[:2] == ["FROM smollm2:135m-f16", "ADAPTER ./adapter.gguf"]
    assert 'PARAMETER stop "<|im_end|>"' in lines and 'PARAMETER stop "<|im_start|>"' in lines
    report = json.loads((run.gguf_dir / "export.json").read_text())
    parity = report["files"][0]["parity"]
    assert report["files"][0]["quant"] == "F16 base + adapter" and parity["tokenization_match"]
    assert parity["top1"] >= 0.99 and abs(parity["ppl_change"]) <= 0.001, parity

    # The adapter is what makes llama.cpp match: the base alone is further from the merged model.
    from localft.export.verify import HfReference, bundled_text
    from localft.run.export import held_out_documents

    documents = [*held_out_documents(run), ("bundled prose", bundled_text())]
    alone = HfReference(run.merged_dir, documents).compare(f16, "F16")
    print(f"base+adapter {parity}; base alone top-1 {alone.top1:.4f} ppl {alone.ppl_change:+.4%}")
    assert abs(alone.ppl_change) > 10 * abs(parity["ppl_change"]), (alone, parity)

    # The same run as if trained on LM Studio's copy of the file: the adapter and a README.txt.
    from localft.run.export import export_run

    spec_path = run.path / "spec.json"
    spec_path.write_text(
        spec_path.read_text().replace("ollama:smollm2:135m-f16", "lmstudio:localft/smollm2-f16")
    )
    studio = export_run(run, ExportSpec(verify=False))  # adapter-only: the default for a local model
    readme = (run.gguf_dir / "README.txt").read_text()
    assert studio.adapter == str(adapter) and f'--lora "{adapter}"' in readme
    assert str(stores["lmstudio"] / "localft" / "smollm2-f16") in readme


@pytest.mark.slow
def test_a_quantized_base_is_verified_beside_an_f16_copy_and_says_how_far_it_moves(stores, tmp_path):  # noqa: F811
    # A Q8_0 base made by localft's own quantizer from the embedded model, as a user's Ollama model.
    add_ollama_model(stores["ollama"], embedded_as("Q8_0", tmp_path / "q8"), "smollm2:135m-q8_0")
    run = train_short_run("ollama:smollm2:135m-q8_0")

    exported = localft("export", run.id, timeout=900)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    print(exported.stdout)
    quantized, reference = json.loads((run.gguf_dir / "export.json").read_text())["files"]
    assert quantized["quant"] == "Q8_0 base + adapter" and quantized["parity"]["passed"]  # ppl +-2%
    assert reference["quant"] == "F16 copy + adapter" and not list(run.path.glob(".base-F16-*"))
    f16 = reference["parity"]
    assert f16["passed"] and f16["top1"] >= 0.99 and abs(f16["ppl_change"]) <= 0.001, f16
    shift = quantized["parity"]["vs_f16_base"]
    assert shift["ppl_shift"] == pytest.approx(quantized["parity"]["ppl_gguf"] / f16["ppl_gguf"] - 1)
    assert f"perplexity {shift['ppl_shift']:+.2%}" in " ".join(exported.stdout.split())
    assert sorted(p.name for p in run.gguf_dir.iterdir()) == ["Modelfile", "adapter.gguf", "export.json"]
