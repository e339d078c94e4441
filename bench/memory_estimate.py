"""The memory estimate (localft.plan.memory, what a plan's verdict rests on) against the peak a training
step really reaches: the embedded model, SFT and a DPO round, on FULL rows (every sequence exactly
max_seq_len tokens: the sample LinkedIn export's real posts repeated, so no row is short and the
estimate's per-token terms are what the step holds), at several shapes so the per-token and per-row
terms can be told apart. Each run trains in its own worker process (a fresh process peak), created
as the faces create it (plan, import, plan on the data; a DPO round through prepare_round from an
SFT run's adapter). Last line: one JSON object.

    .venv/bin/python bench/memory_estimate.py [--steps 1] [--backends torch,mlx]
        [--methods sft,dpo,packed] [--shapes 2x256,4x512]

`packed` is SFT on the sample's own posts as a user's run packs them (rows of several short posts,
kept apart by an attention mask), for comparison with the full rows of one long example each.
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
QUIET = {"eval_every": 10**6, "save_every": 10**6, "log_every": 1, "early_stopping_patience": None}


def real_posts(data_dir: Path) -> list[str]:
    from localft.data.chat_tokens import read_jsonl

    return [r["messages"][-1]["content"] for r in read_jsonl(data_dir / "train.jsonl")]


def long_text(posts: list[str], start: int) -> str:
    """The real posts, from the `start`th on and around again: far more than any row holds."""
    ordered = posts[start % len(posts) :] + posts[: start % len(posts)]
    return "\n\n".join(ordered * 2)


def fill_rows(data_dir: Path) -> None:
    """Every training example's reply becomes long real text: each row is truncated to exactly
    max_seq_len tokens, one example per row (nothing left to pack)."""
    from localft.data.chat_tokens import read_jsonl

    rows = list(read_jsonl(data_dir / "train.jsonl"))
    posts = real_posts(data_dir)
    with open(data_dir / "train.jsonl", "w", encoding="utf-8") as f:
        for n, row in enumerate(rows):
            row["messages"][-1]["content"] = long_text(posts, n)
            f.write(json.dumps(row) + "\n")


def write_pairs(data_dir: Path, path: Path, count: int) -> Path:
    """`count` chat pairs whose chosen and rejected replies both run past max_seq_len."""
    posts = real_posts(data_dir)
    with open(path, "w", encoding="utf-8") as f:
        for n in range(count):
            prompt = f"Write a LinkedIn post, number {n}."
            chosen, rejected = long_text(posts, 2 * n), long_text(posts, 2 * n + 1)
            f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    return path


def train_in_worker(run) -> tuple[list, int]:
    """The run's Step events and the worker process's own peak RSS in bytes (wait4: this child's,
    not the largest of every child so far)."""
    from localft.events import Step, read_events

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(run.log_path, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "localft.run.worker", str(run.path)], stdout=log,
                                 stderr=subprocess.STDOUT, env=env)  # fmt: skip
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0  # reaped above
    steps = [e for e in read_events(run.events_path) if isinstance(e, Step)]
    if not steps:
        raise SystemExit(f"run {run.id} trained no step:\n{run.log_path.read_text()[-3000:]}")
    return steps, usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def sft_run(backend: str, batch: int, seq: int, steps: int, full: bool = True):
    from localft.config import DataSpec, TrainSpec
    from localft.data.dataset import build_dataset
    from localft.run.folder import new_run

    spec = TrainSpec(model="embedded", backend=backend, device="cpu", steps=steps, batch_size=batch,
                     max_seq_len=seq, **QUIET)  # fmt: skip
    run = new_run(spec, name=f"bench-memory-{backend}-sft-{batch}x{seq}")
    build_dataset(SAMPLE_EXPORT, DataSpec(), run.data_dir)
    if full:
        fill_rows(run.data_dir)
    return run


def dpo_run(backend: str, batch: int, seq: int, steps: int, source, work: Path):
    from localft.train.preference_round import prepare_round

    pairs = write_pairs(source.data_dir, work / f"pairs-{backend}-{batch}x{seq}.jsonl", max(6, batch * steps))
    overrides = {"batch_size": batch, "max_seq_len": seq, "steps": steps, **QUIET}
    return prepare_round(
        source, "dpo", str(pairs), overrides, name=f"bench-memory-{backend}-dpo-{batch}x{seq}"
    )


def measure(run) -> dict:
    """The plan's estimate against the worker's peak RSS: what has to fit in the machine's memory.
    On torch/CPU a Step's peak_mem is that same figure; on MLX it is mx.get_peak_memory, MLX's
    buffers only (no Python, tokenizer or framework), shown beside it."""
    from localft.plan.planner import plan_run

    planned = plan_run(run)
    steps, rss = train_in_worker(run)
    return {"estimate": planned.memory_needed, "measured": rss, "ratio": planned.memory_needed / rss,
            "step_peak": max(s.peak_mem for s in steps), "tokens_per_step": steps[-1].tokens // len(steps),
            "tok_per_s": steps[-1].tok_per_s}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--backends", default="torch,mlx")
    parser.add_argument("--methods", default="sft,dpo")
    parser.add_argument("--shapes", default="2x256,4x512", help="rows x tokens, comma-separated")
    args = parser.parse_args()
    from bench_home import use_temporary_home

    work = Path(tempfile.mkdtemp(prefix="memory-estimate-"))
    use_temporary_home(work)  # the bench's runs never join the user's run list
    from localft.disk import fmt_bytes

    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    results = []
    for backend in args.backends.split(","):
        source = None
        for method in args.methods.split(","):
            for batch, seq in shapes:
                if method == "dpo" and source is None:  # the SFT run a round starts from: its adapter
                    source = sft_run(backend, 1, 64, 1, full=False)
                    train_in_worker(source)
                if method == "dpo":
                    run = dpo_run(backend, batch, seq, args.steps, source, work)
                else:  # "packed": the sample's own posts packed into rows (several per row, masked)
                    run = sft_run(backend, batch, seq, args.steps, full=method == "sft")
                r = {"backend": backend, "method": method, "batch": batch, "seq": seq,
                     **measure(run)}  # fmt: skip
                print(json.dumps(r), flush=True)
                results.append(r)
    print(f"embedded model, full rows, CPU fp32, {args.steps} step(s); load average {os.getloadavg()[0]:.1f}; "
          "measured = the worker's peak RSS; step peak = its Steps' peak_mem (MLX: mx.get_peak_memory)")  # fmt: skip
    print(f"{'backend':8}{'method':7}{'shape':>8}{'tok/step':>9}{'estimate':>11}{'measured':>11}{'est/meas':>9}"
          f"{'step peak':>11}")  # fmt: skip
    for r in results:
        print(f"{r['backend']:8}{r['method']:7}{r['batch']:>4}x{r['seq']:<4}{r['tokens_per_step']:>8}"
              f"{fmt_bytes(r['estimate']):>11}{fmt_bytes(r['measured']):>11}{r['ratio']:>9.2f}"
              f"{fmt_bytes(r['step_peak']):>11}")  # fmt: skip
    print(json.dumps({"steps": args.steps, "results": results}))


if __name__ == "__main__":
    main()
