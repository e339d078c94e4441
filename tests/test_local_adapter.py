"""A run trained on an Ollama model (an F16 copy of the embedded model in a real store layout)
exported as an adapter alone: the LoRA GGUF, a Modelfile on the user's model, and llama.cpp's
base + adapter matching the HF merged model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localft.config import ExportSpec
from localft.export.pipeline import export_folder
from localft.plan.catalog import resolve_model
from tests.command_support import localft, only_run
from tests.local_store import add_lmstudio_model, add_ollama_model
from tests.test_local_models import EXPORT, stores  # noqa: F401  (the fixture)


@pytest.mark.slow
def test_a_run_on_an_ollama_model_exports_its_adapter_for_that_model(stores, tmp_path):  # noqa: F811
    # An F16 base: the embedded model's Q4_1 file dequantized, written back as F16.
    hf = resolve_model("ollama:smollm2:135m")
    spec = ExportSpec(quants=["F16"], verify=False, ollama=False, lmstudio=False, name="smollm2-f16")
    f16 = Path(export_folder(hf, tmp_path / "f16", spec).files[0].path)
    add_ollama_model(stores["ollama"], f16, "smollm2:135m-f16")
    add_lmstudio_model(stores["lmstudio"], f16, "localft", "smollm2-f16")
    trained = localft(
        "train", EXPORT, "--model", "ollama:smollm2:135m-f16", "--steps", "4", "--set", "max_seq_len=128",
        "--set", "learning_rate=0.02", "--set", "save_every=4", "--set", "eval_every=4",
        env={"HF_HUB_OFFLINE": "1"}, timeout=900,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run = only_run()

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
