"""The GPU check's stages, each in its own process with its own time limit, gathered into one JSON
line: QLoRA and bf16 LoRA tokens/s and peak memory beside Trainer + peft at the same settings (and
MFU), the Liger path on and off, the varlen attention kernel's loss and gradients beside masked SDPA,
and one FSDP2 + QLoRA run on one GPU. bench/gpu_check.sh installs what it needs and calls this.

    python bench/gpu_check.py --tokenizer DIR            # CUDA (about 5 minutes on an H100)
    python bench/gpu_check.py --device cpu --smoke       # this machine: the plumbing, not figures

A stage that fails or runs past its limit is recorded with its error and the end of its log; the
others still run. Progress goes to stderr, the JSON line to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# (stage, model, quantize, extra environment, with the Trainer + peft baseline)
THROUGHPUT = (
    ("qlora", "4bit", {}, True),
    ("bf16_lora", "none", {}, True),
    ("bf16_lora_no_liger", "none", {"LOCALFT_LIGER": "0"}, False),
)


def log(message: str) -> None:
    print(f"gpu_check: {message}", file=sys.stderr, flush=True)


def run_stage(name: str, command: list[str], limit_s: float, env: dict | None = None) -> dict:
    """One stage's process; its last stdout line is its JSON figures."""
    log(f"{name} (limit {limit_s:.0f} s): {' '.join(command[1:])}")
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=limit_s, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-1500:]
        return {
            "error": f"ran past {limit_s:.0f} s",
            "log_tail": tail.decode("utf-8", "replace") if isinstance(tail, bytes) else tail,
        }
    seconds = round(time.monotonic() - start, 1)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit code {done.returncode}", "seconds": seconds, "log_tail": done.stderr[-1500:]}
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {
            "error": "no JSON figures on its last line",
            "seconds": seconds,
            "log_tail": done.stdout[-1500:],
        }
    figures = figures if isinstance(figures, dict) else {"result": figures}
    log(f"{name} done in {seconds} s")
    return {**figures, "seconds": seconds}


def throughput_summary(figures: dict) -> dict:
    """The figures a reader compares: tokens/s, peak memory and MFU, ours and the baseline's."""
    if "error" in figures:
        return figures
    keep = ("tok_per_s", "peak_mem", "mfu", "val_loss")
    out = {"localft": {k: figures["localft"][k] for k in keep}, "seconds": figures["seconds"]}
    if figures.get("baseline"):
        out["trainer_peft"] = {k: figures["baseline"][k] for k in keep}
        out["speed_ratio"] = figures["ratio"]
        out["memory_ratio"] = figures["localft"]["peak_mem"] / figures["baseline"]["peak_mem"]
    return out


def fsdp_smoke(args, workdir: Path, model: str) -> list[str]:
    """A one-process FSDP2 + QLoRA run through the CLI, as a user would start it."""
    data = workdir / "fsdp-data.jsonl"
    from train_throughput import synthetic_rows

    data.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(40, 3)), encoding="utf-8")
    return [
        sys.executable, "-m", "localft.cli.main", "train", str(data), "--model", model, "--backend", "torch",
        "--quantize", "4bit", "--steps", "2", "--batch-size", "2", "--max-seq-len", "256", "--nproc", "1",
        "--set", "sharding=fsdp", "--set", f"device={args.device}", "--set", "eval_every=1000",
    ]  # fmt: skip


def build_smoke_model(args, workdir: Path) -> str:
    from train_throughput import build_model_dir

    return str(build_model_dir(args.model, workdir, args.tokenizer))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: check the stages run, not their speed")
    p.add_argument(
        "--tokenizer", default=None, help="tokenizer folder for the random models (default: embedded)"
    )
    p.add_argument("--model", default=None, help="default: qwen2.5-0.5b-random (smoke: tiny-llama-random)")
    p.add_argument("--budget-s", type=float, default=420, help="the stages' time together")
    args = p.parse_args()
    args.model = args.model or ("tiny-llama-random" if args.smoke else "qwen2.5-0.5b-random")
    workdir = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    sys.path.insert(0, str(BENCH))
    from bench_home import use_temporary_home

    use_temporary_home(workdir)  # the stages inherit LOCALFT_HOME: their runs stay out of the user's list
    size = (["--steps", "3", "--batch-size", "2", "--max-seq-len", "128", "--examples", "24"] if args.smoke else
            ["--steps", "20", "--batch-size", "16", "--max-seq-len", "1024", "--examples", "400"])  # fmt: skip
    tokenizer = ["--tokenizer", args.tokenizer] if args.tokenizer else []
    started, share = time.monotonic(), args.budget_s / 5
    result: dict = {"gpu": args.device == "cuda", "device": device_name(args.device), "model": args.model,
                    "smoke": args.smoke, "versions": versions()}  # fmt: skip
    for name, quantize, env, baseline in THROUGHPUT:
        command = [sys.executable, str(BENCH / "train_throughput.py"), "--model", args.model, "--device",
                   args.device, "--quantize", quantize, "--data", "synthetic", *size, *tokenizer,
                   *([] if baseline else ["--no-baseline"])]  # fmt: skip
        result[name] = throughput_summary(run_stage(name, command, share, env))
    rows = (
        ["--rows", "2", "--row-len", "128", "--repeats", "2"]
        if args.smoke
        else ["--rows", "4", "--row-len", "2048"]
    )
    result["varlen_vs_masked_sdpa"] = run_stage(
        "varlen", [sys.executable, str(BENCH / "attention_parity.py"), "--model", args.model,
                   "--device", args.device, *rows, *tokenizer], share,
    )  # fmt: skip
    model_dir = build_smoke_model(args, workdir)
    fsdp = run_stage("fsdp2_qlora", [*fsdp_smoke(args, workdir, model_dir), "--name", "fsdp-smoke"], share)
    result["fsdp2_qlora_1gpu"] = fsdp_result(fsdp)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))


def fsdp_result(stage: dict) -> dict:
    """The CLI prints no JSON: read the run's own events for how it ended."""
    from localft.events import Finished, Step, read_events
    from localft.run.folder import RunDir, list_runs

    runs = [r for r in list_runs() if r.id.endswith("fsdp-smoke")]
    if not runs:
        return {"error": stage.get("error", "no run was started"), "log_tail": stage.get("log_tail", "")}
    events = read_events(RunDir(runs[-1].path).events_path)
    end = next((e for e in reversed(events) if isinstance(e, Finished)), None)
    losses = [e.loss for e in events if isinstance(e, Step)]
    return {"status": end.status if end else "no Finished event", "losses": losses,
            **({"error": end.error} if end and end.error else {})}  # fmt: skip


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(0) if device == "cuda" else "cpu"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "liger-kernel"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


if __name__ == "__main__":
    main()
