"""The memory estimate (localft.plan.memory, what a plan's verdict rests on) against the peak a training
step really reaches, for torch and MLX at the same settings: the embedded model on the sample
LinkedIn export, 4 rows x 512 tokens. Each backend trains in its own worker process (a fresh
process peak). Last line: one JSON object.

    .venv/bin/python bench/memory_estimate.py [--steps 2] [--backends torch,mlx]
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


def measure(backend: str, args, work: Path) -> dict:
    """Create a run as the faces do (plan, import, plan on the data), train it in the worker, and
    read the plan's estimate and the steps' peak memory back from the run."""
    from localft.config import DataSpec, TrainSpec
    from localft.data.dataset import build_dataset
    from localft.events import Step, read_events
    from localft.plan.planner import plan_run
    from localft.run.folder import new_run

    spec = TrainSpec(model="embedded", backend=backend, device="cpu", steps=args.steps, batch_size=args.batch,
                     max_seq_len=args.seq, eval_every=10**6, save_every=10**6, log_every=1)  # fmt: skip
    run = new_run(spec, name=f"bench-memory-{backend}")
    build_dataset(SAMPLE_EXPORT, DataSpec(), run.data_dir)
    planned = plan_run(run)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(run.log_path, "wb") as log:
        subprocess.run([sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log,
                       stderr=subprocess.STDOUT, env=env, check=False)  # fmt: skip
    steps = [e for e in read_events(run.events_path) if isinstance(e, Step)]
    if not steps:
        raise SystemExit(f"{backend} trained no step:\n{run.log_path.read_text()[-3000:]}")
    peak = max(s.peak_mem for s in steps)
    return {"estimate": planned.memory_needed, "measured": peak, "ratio": planned.memory_needed / peak,
            "tok_per_s": steps[-1].tok_per_s, "loss": steps[-1].loss}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--backends", default="torch,mlx")
    args = parser.parse_args()
    from bench_home import use_temporary_home

    work = Path(tempfile.mkdtemp(prefix="memory-estimate-"))
    use_temporary_home(work)  # the bench's runs never join the user's run list
    from localft.disk import fmt_bytes

    results = {name: measure(name, args, work) for name in args.backends.split(",")}
    print(f"embedded model, {args.batch} rows x {args.seq} tokens, CPU; peak = the steps' reported peak "
          "(torch: process peak RSS; MLX: mx.get_peak_memory)")  # fmt: skip
    print(f"{'backend':8}{'estimate':>11}{'measured':>11}{'est/meas':>10}{'tok/s':>8}")
    for name, r in results.items():
        print(f"{name:8}{fmt_bytes(r['estimate']):>11}{fmt_bytes(r['measured']):>11}{r['ratio']:>10.2f}"
              f"{r['tok_per_s']:>8.1f}")  # fmt: skip
    print(json.dumps({"batch": args.batch, "seq": args.seq, **results}))


if __name__ == "__main__":
    main()
