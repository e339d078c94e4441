"""`localft export RUN --adapter` for a run of each backend: the adapter GGUF on the base GGUF gives
llama.cpp the same logits as the merged model's GGUF (an MLX run saves mlx-lm's lora_a/lora_b)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from localft.run.folder import RunDir
from tests.command_support import localft, only_run

EXPORT = Path(__file__).resolve().parent.parent / "examples" / "linkedin-export.zip"
TEXT = "Children compared the keeper's notes with modern weather data."


def llama_logits(gguf: Path, lora: Path | None = None) -> np.ndarray:
    from localft.export.llamacpp import close_llama, load_llama

    llm = load_llama(gguf, n_ctx=64, logits_all=True, lora_path=lora)
    try:
        ids = llm.tokenize(TEXT.encode(), add_bos=True)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        close_llama(llm)


def check_adapter_matches_merged(run: RunDir, base_dir: Path, tmp_path: Path) -> None:
    """The run's adapter GGUF on the base GGUF against the run's merged F16 GGUF."""
    from localft.export.gguf import convert_folder

    (adapter,) = [p for p in run.gguf_dir.glob("*.gguf") if "lora" in p.name.lower()]
    merged = run.gguf_dir / f"{run.id}-F16.gguf"
    base = convert_folder(base_dir, tmp_path / "base-F16.gguf", "F16").path
    plain, with_lora, want = llama_logits(base), llama_logits(base, adapter), llama_logits(merged)
    changed = np.abs(plain - want).max()
    assert changed > 0.02  # the adapter really changes the model
    assert np.abs(with_lora - want).max() < changed / 10
    assert np.mean(with_lora.argmax(-1) == want.argmax(-1)) == 1.0


@pytest.mark.slow
@pytest.mark.mlx
@pytest.mark.llama
def test_an_mlx_runs_adapter_exports_and_runs_on_the_base(tiny_models, tmp_path):
    pytest.importorskip("mlx_lm")
    pytest.importorskip("llama_cpp")
    model = tiny_models("llama")
    trained = localft(
        "train", EXPORT, "--model", model, "--backend", "mlx", "--steps", "4", "--lr", "0.02",
        "--set", "max_seq_len=128", "--set", "save_every=4", "--set", "eval_every=4", "--set", "lora.rank=4",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run = only_run()
    names = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert "lora_parameters" in names  # mlx-lm's own layout, not peft's
    exported = localft("export", run.id, "--quant", "F16", "--adapter", "--no-verify")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    check_adapter_matches_merged(run, model, tmp_path)
