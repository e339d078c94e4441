"""bench/gpu_check.sh, for when a GPU is lent: without one it says so in one line and measures
nothing; its stages (QLoRA and bf16 LoRA beside Trainer + peft, Liger off, varlen vs masked SDPA,
a one-process FSDP2 + QLoRA run) run for real here at smoke size on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_scripts_parse():
    for script in ("gpu_check.sh", "gpu_prepare.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "bench" / script)]).returncode == 0, script


def test_without_a_gpu_the_check_says_so_in_one_line_and_measures_nothing():
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert done.returncode == 2
    assert json.loads(done.stdout) == {"gpu": False, "reason": "no CUDA GPU visible to torch"}
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("gpu_check: no CUDA GPU here"), done.stderr


@pytest.mark.slow
def test_every_stage_of_the_check_runs_at_smoke_size_on_the_cpu():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--smoke"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["gpu"] is False and figures["smoke"] is True
    for stage in ("qlora", "bf16_lora"):
        both = figures[stage]
        assert "error" not in both, both
        assert both["localft"]["tok_per_s"] > 0 and both["trainer_peft"]["tok_per_s"] > 0
        assert 0 < both["localft"]["mfu"] < 1 and both["memory_ratio"] > 0
        # the same data, model and LoRA: the two trainers land on nearly the same validation loss
        assert abs(both["localft"]["val_loss"] - both["trainer_peft"]["val_loss"]) < 0.05
    assert "trainer_peft" not in figures["bf16_lora_no_liger"] and figures["bf16_lora_no_liger"]["localft"]
    attention = figures["varlen_vs_masked_sdpa"]  # on a CPU both paths are masked: equal by construction
    assert (
        attention["loss_masked"] == pytest.approx(attention["loss_varlen"])
        and attention["grad_cosine"] > 0.9999
    )
    fsdp = figures["fsdp2_qlora_1gpu"]
    assert fsdp["status"] == "completed" and len(fsdp["losses"]) == 2, fsdp
