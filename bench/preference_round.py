"""A preference round on the embedded model, end to end, as a person would run it: SFT on the
sample LinkedIn export, export, `--pairs self` (real post = chosen, the SFT GGUF's draft =
rejected), DPO from the SFT adapter, export, evaluation. Prints the DPO step's cost beside the SFT
step's (tokens/s, peak memory), the held-out reward accuracy at each evaluation, and the eval
report's base -> SFT -> DPO table. Last line: one JSON object.

    .venv/bin/python bench/preference_round.py [--sft-steps 20] [--pairs 48]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_EXPORT = REPO / "examples" / "linkedin-export.zip"


def train_in_worker(run) -> dict:
    """Train `run` in the worker process (a fresh process peak); its steps' figures."""
    from localft.events import Log, Step, read_events

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with open(run.log_path, "wb") as log:
        subprocess.run([sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log,
                       stderr=subprocess.STDOUT, env=env, check=False)  # fmt: skip
    events = read_events(run.events_path)
    steps = [e for e in events if isinstance(e, Step)]
    if not steps:
        raise SystemExit(f"run {run.id} trained no step:\n{run.log_path.read_text()[-3000:]}")
    later = steps[1:] or steps  # the first step includes warm-up work
    return {
        "steps": len(steps), "first_loss": steps[0].loss, "last_loss": steps[-1].loss,
        "tok_per_s": sum(s.tok_per_s for s in later) / len(later), "peak_mem": max(s.peak_mem for s in steps),
        "reward_accuracy": [float(e.message.rsplit(" ", 1)[1]) for e in events
                            if isinstance(e, Log) and e.message.startswith("reward accuracy")],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=48, help="requests drafted per split for --pairs self")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=256)
    args = parser.parse_args()
    from bench_home import use_temporary_home

    work = Path(tempfile.mkdtemp(prefix="preference-round-"))
    use_temporary_home(work)
    from localft.config import DataSpec, ExportSpec, TrainSpec
    from localft.data.dataset import build_dataset
    from localft.disk import fmt_bytes
    from localft.eval.evaluate import evaluate_run
    from localft.eval.metrics import HEADLINE
    from localft.plan.planner import plan_run
    from localft.run.export import export_run
    from localft.run.folder import new_run
    from localft.train.preference_round import prepare_round

    spec = TrainSpec(model="embedded", backend="torch", device="cpu", steps=args.sft_steps, batch_size=args.batch,
                     max_seq_len=args.seq, eval_every=10**6, save_every=10**6, learning_rate=5e-4)  # fmt: skip
    sft = new_run(spec, name="bench-sft")
    build_dataset(SAMPLE_EXPORT, DataSpec(), sft.data_dir)
    plan_run(sft)
    figures = {"sft": train_in_worker(sft)}
    quant = ExportSpec(quants=["Q8_0"], verify=False, ollama=False)
    export_run(sft, quant)
    print(f"sft: {figures['sft']}", flush=True)

    def progress(split: str, done: int, total: int) -> None:
        if done == total:
            print(f"drafted {total} {split} requests", flush=True)

    overrides = {
        "batch_size": args.batch,
        "eval_every": 4,
        "save_every": 10**6,
        "early_stopping_patience": None,
    }
    dpo = prepare_round(sft, "dpo", "self", overrides, name="bench-dpo", progress=progress, limit=args.pairs)
    figures["dpo"] = train_in_worker(dpo)
    print(f"dpo: {figures['dpo']}", flush=True)
    export_run(dpo, quant)
    report = evaluate_run(dpo, samples=6, max_tokens=80, max_rows=16)
    metrics = {key: report["metrics"][key] for key, _, _ in HEADLINE if key in report["metrics"]}
    print(f"\n{'':<14} {'tok/s':>8} {'peak':>10}")
    for name in ("sft", "dpo"):
        f = figures[name]
        print(f"{name:<14} {f['tok_per_s']:>8.1f} {fmt_bytes(f['peak_mem']):>10}")
    print(f"held-out reward accuracy at each evaluation: {figures['dpo']['reward_accuracy']}")
    for key, label, _ in HEADLINE:
        if key in metrics:
            m = metrics[key]
            print(
                f"{label:<45} base {m['base']:.3f}  sft {m.get('sft', float('nan')):.3f}  dpo {m['tuned']:.3f}"
            )
    print(json.dumps({"figures": figures, "metrics": metrics, "work": str(work)}))


if __name__ == "__main__":
    main()
