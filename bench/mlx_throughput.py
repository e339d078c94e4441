"""Throughput of localft's MLX backend against `mlx_lm lora` on the same model, data, LoRA and steps.

    .venv/bin/python bench/mlx_throughput.py [--model tiny|embedded|FOLDER] [--steps 12]

Both runs train on completions only; tokens/s counts trained (loss-bearing) tokens per second of
training, as mlx-lm reports it. Both adapters are then scored by one evaluator on the whole
validation split. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def prepare_model(name: str, work: Path) -> Path:
    if name == "tiny":
        from tests.tiny import build_tiny_model

        return build_tiny_model(work / "tiny-llama", "llama")
    from localft.plan.catalog import resolve_model

    return resolve_model(name)


def prepare_data(source: Path, model_dir: Path, out: Path, max_seq_len: int) -> Path:
    from localft.config import DataSpec
    from localft.data.dataset import build_dataset

    build_dataset(source, DataSpec(), out, tokenizer_dir=model_dir, max_seq_len=max_seq_len)
    return out


MLX_LM_WITH_REPORTS = """
import json, sys
import mlx_lm.lora as lora
from mlx_lm.tuner.callbacks import TrainingCallback

class PrintReports(TrainingCallback):
    def on_train_loss_report(self, info):
        print("BENCH " + json.dumps({k: float(v) for k, v in info.items()}), flush=True)

lora.get_reporting_callbacks = lambda *a, **k: PrintReports()
sys.argv = ["mlx_lm.lora", "-c", sys.argv[1]]
lora.main()
"""


def run_mlx_lm(args, model_dir: Path, data_dir: Path, work: Path) -> dict:
    """`python -m mlx_lm lora` as a user runs it, with its per-step reports parsed."""
    adapter = work / "mlx-lm-adapter"
    config = {
        "model": str(model_dir), "train": True, "data": str(data_dir), "iters": args.steps,
        "batch_size": args.batch_size, "num_layers": -1, "learning_rate": args.lr,
        "max_seq_length": args.max_seq_len, "mask_prompt": True, "adapter_path": str(adapter),
        "steps_per_report": 1, "steps_per_eval": 10**6, "val_batches": 1, "save_every": 10**6, "seed": 0,
        "lora_parameters": {"rank": args.rank, "scale": args.alpha / args.rank, "dropout": 0.0},
        # The same update rule as localft's (AdamW, no decay = Adam with bias correction), so the
        # validation losses compare batching and speed, not optimizers.
        "optimizer": "adam", "optimizer_config": {"adam": {"bias_correction": True}},
    }  # fmt: skip
    cfg_path = work / "mlx_lm.json"
    cfg_path.write_text(json.dumps(config))
    # mlx-lm reads YAML configs; JSON is valid YAML. Its own `main()` runs the training; the
    # only addition is a reporting callback that prints each step's exact figures as JSON.
    tic = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", MLX_LM_WITH_REPORTS, str(cfg_path)], capture_output=True, text=True
    )
    wall = time.perf_counter() - tic
    reports = [json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("BENCH ")]
    if out.returncode or len(reports) != args.steps:
        raise SystemExit(f"mlx_lm lora failed or reported {len(reports)} steps:\n{out.stderr[-3000:]}")
    seconds, prev = 0.0, 0
    for r in reports:
        seconds += (r["trained_tokens"] - prev) / r["tokens_per_second"]
        prev = r["trained_tokens"]
    last = reports[-1]
    return {
        "adapter": adapter, "trained_tokens": prev, "train_seconds": seconds, "tok_per_s": prev / seconds,
        "peak_mem": last["peak_memory"] * 1e9, "wall_s": wall, "last_train_loss": last["train_loss"],
    }  # fmt: skip


def run_localft(args, model_dir: Path, data_dir: Path) -> dict:
    import shutil

    from localft.config import TrainSpec
    from localft.events import Step
    from localft.run.folder import new_run
    from localft.run.worker import run_plan
    from localft.train import train

    spec = TrainSpec(
        model=str(model_dir), backend="mlx", steps=args.steps, batch_size=args.batch_size,
        learning_rate=args.lr, schedule="constant", warmup_steps=0, max_seq_len=args.max_seq_len,
        lora={"rank": args.rank, "alpha": args.alpha}, eval_every=10**6, save_every=10**6, seed=0,
        max_grad_norm=0.0,  # mlx-lm does not clip
    )  # fmt: skip
    run = new_run(spec, name="bench-mlx")
    shutil.copytree(data_dir, run.data_dir)
    run.split_path("valid").unlink()  # scored below by the shared evaluator, like mlx-lm's adapter
    events = []
    tic = time.perf_counter()
    train(run, run_plan(run), events.append, lambda: False)
    wall = time.perf_counter() - tic
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    steps = [e for e in events if isinstance(e, Step)]
    return {
        "adapter": run.adapter_dir, "trained_tokens": state["trained_tokens"],
        "train_seconds": state["train_seconds"], "tok_per_s": state["trained_tokens"] / state["train_seconds"],
        "peak_mem": max(s.peak_mem for s in steps), "wall_s": wall, "last_train_loss": steps[-1].loss,
    }  # fmt: skip


def validation_loss(model_dir: Path, adapter: Path, data_dir: Path, max_seq_len: int) -> float:
    """Completion-only loss over the whole validation split, one example per row."""
    from transformers import AutoTokenizer

    from localft.backends.mlx.loss import masked_loss
    from localft.backends.mlx.modeling import (
        add_adapters,
        load_adapter_weights,
        load_base,
        read_adapter_config,
    )
    from localft.backends.mlx.session import batch_arrays
    from localft.train.rows import collate, eval_rows, tokenize_split

    tok = AutoTokenizer.from_pretrained(model_dir)
    examples = tokenize_split(tok, data_dir / "valid.jsonl", max_seq_len, "completions")
    model, _ = load_base(model_dir, None, quantize=False)
    add_adapters(model, read_adapter_config(adapter))
    load_adapter_weights(model, adapter)
    model.eval()
    total, count = 0.0, 0
    rows = eval_rows(examples, max_seq_len, packing=False)
    for i in range(0, len(rows), 4):
        loss, n = masked_loss(model, *batch_arrays(collate(rows[i : i + 4], 0)))
        total, count = total + loss.item(), count + n.item()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny (random 2-layer llama), embedded, or a folder")
    parser.add_argument("--data", type=Path, default=REPO / "examples" / "linkedin-export.zip")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    args = parser.parse_args()
    from bench_home import use_temporary_home

    use_temporary_home(Path(tempfile.mkdtemp(prefix="mlx-bench-home-")))  # never in the user's run list

    from localft.disk import fmt_bytes
    from localft.plan.hardware import machine_info

    with tempfile.TemporaryDirectory(prefix="mlx-bench-") as tmp:
        work = Path(tmp)
        model_dir = prepare_model(args.model, work)
        data_dir = prepare_data(args.data, model_dir, work / "data", args.max_seq_len)
        ref = run_mlx_lm(args, model_dir, data_dir, work)
        ours = run_localft(args, model_dir, data_dir)
        for result in (ref, ours):
            result["val_loss"] = validation_loss(model_dir, result.pop("adapter"), data_dir, args.max_seq_len)

    info = machine_info()
    ratio = ours["tok_per_s"] / ref["tok_per_s"]
    print(f"model {args.model}, {args.steps} steps, batch {args.batch_size}, max_seq_len {args.max_seq_len}, "
          f"LoRA r={args.rank} alpha={args.alpha}; {info.cpu} ({info.cores} cores), {info.os}")  # fmt: skip
    print(f"{'':12}{'tokens/s':>10}{'trained tok':>13}{'train s':>9}{'peak mem':>11}{'val loss':>10}")
    for name, r in (("mlx_lm lora", ref), ("localft mlx", ours)):
        print(f"{name:12}{r['tok_per_s']:>10.1f}{r['trained_tokens']:>13}{r['train_seconds']:>9.1f}"
              f"{fmt_bytes(r['peak_mem']):>11}{r['val_loss']:>10.4f}")  # fmt: skip
    print(f"ratio (localft / mlx_lm tokens/s): {ratio:.2f}x")
    figures = {
        "model": args.model, "steps": args.steps, "batch_size": args.batch_size, "max_seq_len": args.max_seq_len,
        "mlx_lm": {k: round(v, 4) for k, v in ref.items()}, "localft": {k: round(v, 4) for k, v in ours.items()},
        "ratio": round(ratio, 3), "machine": f"{info.cpu}, {info.cores} cores, {info.os}",
    }  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
