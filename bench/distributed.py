"""Several processes on this machine's CPU: 1 process at micro-batch 4 vs 2 processes (torch
gloo, DDP and FSDP2) at micro-batch 2, the same global batch, data and steps, each through the
run's worker as localft starts it. Prints tokens/s (median of the steps after the first two),
the ratio to 1 process, each process's peak RSS (sampled from outside), and whether the loss
curves agree. Last line: one JSON object.

    python bench/distributed.py                   # a tiny random llama (tests/tiny.py), 10 steps
    python bench/distributed.py --model PATH      # e.g. the embedded model (slow on a shared CPU)
    python bench/distributed.py --backend mlx     # MLX: 1 process vs 2 through mlx.launch (ring)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


LAUNCHERS = {"mlx.launch", "localft.backends.mlx.launcher"}  # MLX's, and localft's wrapper of it


def sampled_peaks(worker: subprocess.Popen) -> dict[str, int]:
    """Peak RSS of each training process under `worker` (rank workers by their RANK), sampled
    every 0.1 s until it exits."""
    import psutil

    peaks: dict[str, int] = {}
    top = psutil.Process(worker.pid)
    while worker.poll() is None:
        try:
            procs = [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for proc in procs:
            try:
                cmd = proc.cmdline()
                if proc.pid == top.pid:
                    name = "worker"
                elif "torch.distributed.run" in cmd or LAUNCHERS & {Path(c).name for c in cmd}:
                    name = "launcher"
                elif "--rank-worker" in cmd:
                    name = f"rank {proc.environ().get('RANK') or proc.environ().get('MLX_RANK', '?')}"
                else:
                    continue
                peaks[name] = max(peaks.get(name, 0), proc.memory_info().rss)
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.1)
    return peaks


def measure(tmp: Path, model: str, label: str, steps: int, **spec) -> dict:
    from localft.events import Step, read_events
    from tests.training import make_run

    _, run = make_run(tmp / label, Path(model), n_train=64, n_valid=0, steps=steps, log_every=1,
                      save_every=10_000, max_seq_len=128, **spec)  # fmt: skip
    with open(run.log_path, "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        peaks = sampled_peaks(worker)
    if worker.wait() != 0:
        raise SystemExit(f"{label} failed: see {run.log_path}")
    step_events = [e for e in read_events(run.events_path) if isinstance(e, Step)]
    return {
        "label": label,
        "tok_per_s": statistics.median(e.tok_per_s for e in step_events[2:]),
        "peak_rss_mib": {k: round(v / 2**20) for k, v in sorted(peaks.items())},
        "losses": [round(e.loss, 5) for e in step_events],
    }


def mlx_rows(tmp: Path, model: str, steps: int) -> list[dict]:
    """MLX (mlx[cpu] here): 1 process vs 2 through mlx.launch's ring over 127.0.0.1."""
    return [
        measure(tmp, model, "MLX 1 process, micro-batch 4", steps, backend="mlx", batch_size=4),
        measure(tmp, model, "MLX 2 processes, micro-batch 2", steps, backend="mlx", batch_size=2, nproc=2),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="a model folder (default: a tiny random llama)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backend", choices=["torch", "mlx"], default="torch")
    args = parser.parse_args()
    from tests.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LOCALFT_HOME"] = str(Path(tmp) / "home")
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny-llama", "llama"))
        rows = (
            mlx_rows(Path(tmp), model, args.steps)
            if args.backend == "mlx"
            else [
                measure(Path(tmp), model, "1 process, micro-batch 4", args.steps, batch_size=4),
                measure(
                    Path(tmp), model, "2 processes DDP, micro-batch 2", args.steps, batch_size=2, nproc=2
                ),
                measure(
                    Path(tmp),
                    model,
                    "2 processes FSDP2, micro-batch 2",
                    args.steps,
                    batch_size=2,
                    nproc=2,
                    sharding="fsdp",
                ),  # fmt: skip
            ]
        )
    base = rows[0]
    print(f"{'':34} {'tok/s':>8} {'ratio':>6}  peak RSS MiB per process   same losses")
    for r in rows:
        r["ratio"] = round(r["tok_per_s"] / base["tok_per_s"], 2)
        r["same_losses"] = all(
            abs(a - b) <= 1e-4 * abs(b) for a, b in zip(r["losses"], base["losses"], strict=True)
        )
        peaks = ", ".join(f"{k} {v}" for k, v in r["peak_rss_mib"].items())
        print(f"{r['label']:34} {r['tok_per_s']:8.0f} {r['ratio']:6.2f}  {peaks:26} {r['same_losses']}")
    print(json.dumps({"cores": os.cpu_count(), "load": os.getloadavg(), "rows": rows}))


if __name__ == "__main__":
    main()
