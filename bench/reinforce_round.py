"""A grpo round on the embedded model, end to end, as a person would run it: a style-clone SFT run
on the sample LinkedIn export (the recipe's CPU settings; a plain run is a style run), export, `localft train --method grpo
--from RUN` (its prepare_round), export, `localft eval` on the round. Prints the mean reward on the
held-out test requests of the base model, the SFT start and the round (the eval report's rewards:
--reward-draws generations per request through llama.cpp, with the spread and a 95% bootstrap interval), the
round's time per step and peak memory, and its per-step training reward and KL. Last line: one
JSON object. MLX on CPU is slow: give it small settings.

    .venv/bin/python bench/reinforce_round.py --backend torch [--sft-steps 30] [--steps 12]
    .venv/bin/python bench/reinforce_round.py --backend mlx --sft-steps 12 --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from preference_round import SAMPLE_EXPORT, train_in_worker  # noqa: E402


def round_figures(run) -> dict:
    """The round's per-step reward, spread and KL, and its time per step (steps 2..N: the first
    includes loading and warm-up)."""
    from localft.events import Eval, Step, read_events

    events = read_events(run.events_path)
    steps = [e for e in events if isinstance(e, Step)]
    gaps = [b.time - a.time for a, b in zip(steps, steps[1:], strict=False)]
    held_out = [e for e in events if isinstance(e, Eval) and e.reward is not None]
    return {
        "reward": [round(s.reward, 4) for s in steps], "reward_std": [round(s.reward_std, 4) for s in steps],
        "kl": [None if s.kl is None else round(s.kl, 5) for s in steps],
        "s_per_step": sum(gaps) / len(gaps) if gaps else float("nan"),
        "held_out": [(e.step, round(e.reward, 4), round(e.val_loss, 4)) for e in held_out],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "mlx"), default="torch")
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--steps", type=int, default=12, help="grpo steps")
    parser.add_argument("--requests", type=int, default=2, help="training requests per grpo step")
    parser.add_argument("--group", type=int, default=4, help="drafts per request (G)")
    parser.add_argument("--draft-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-4, help="grpo learning rate")
    parser.add_argument("--beta", type=float, default=0.04, help="KL to the start adapter (0: none)")
    parser.add_argument("--eval-tokens", type=int, default=None, help="default: --draft-tokens")
    parser.add_argument("--eval-every", type=int, default=5, help="grpo steps between held-out rewards")
    parser.add_argument(
        "--reward-draws", type=int, default=4, help="generations per test request the reward averages"
    )
    args = parser.parse_args()
    from bench_home import use_temporary_home

    work = Path(tempfile.mkdtemp(prefix="reinforce-round-"))
    use_temporary_home(work)
    from localft.config import DataSpec, ExportSpec, TrainSpec
    from localft.data.dataset import build_dataset
    from localft.disk import fmt_bytes
    from localft.eval.evaluate import evaluate_run
    from localft.plan.planner import plan_run
    from localft.recipes.style_clone import RECIPE
    from localft.run.export import export_run
    from localft.run.folder import new_run
    from localft.train.preference_round import prepare_round

    started = time.time()
    cpu = RECIPE.cpu_defaults
    spec = TrainSpec(model="embedded", backend=args.backend, device="cpu", steps=args.sft_steps,
                     **{k: v for k, v in cpu.items() if k not in ("epochs", "early_stopping_patience")},
                     early_stopping_patience=None)  # fmt: skip
    sft = new_run(spec, name=f"bench-sft-{args.backend}")
    sft.data_dir.mkdir(parents=True, exist_ok=True)
    build_dataset(SAMPLE_EXPORT, DataSpec(), sft.data_dir)
    plan_run(sft)
    figures = {"sft": train_in_worker(sft)}
    print(f"sft: {figures['sft']}", flush=True)
    quant = ExportSpec(quants=["Q8_0"], verify=False, ollama=False)
    export_run(sft, quant)

    overrides = {"steps": args.steps, "batch_size": args.requests, "grad_accum": 1, "group_size": args.group,
                 "max_draft_tokens": args.draft_tokens, "learning_rate": args.lr, "warmup_steps": 0,
                 "schedule": "constant", "save_every": 10**6, "early_stopping_patience": None,
                 "eval_every": args.eval_every}  # fmt: skip
    if args.beta:
        overrides["beta"] = args.beta
    grpo = prepare_round(sft, "grpo", overrides=overrides, name=f"bench-grpo-{args.backend}")
    figures["grpo"] = {**train_in_worker(grpo), **round_figures(grpo)}
    print(f"grpo: {figures['grpo']}", flush=True)
    export_run(grpo, quant)
    test_rows = sum(1 for _ in grpo.split_path("test").open())
    report = evaluate_run(
        grpo,
        samples=test_rows,
        max_tokens=args.eval_tokens or args.draft_tokens,
        max_rows=test_rows,
        reward_draws=args.reward_draws,
    )
    rewards = {w: {k: v for k, v in r.items() if k != "weights"} for w, r in report["rewards"].items()}

    g = figures["grpo"]
    print(f"\ngrpo on {args.backend}/cpu: {args.steps} steps of {args.requests} requests x G={args.group} drafts "
          f"of <= {args.draft_tokens} tokens, lr {args.lr:g}, beta {args.beta:g}")  # fmt: skip
    print(f"time per step {g['s_per_step']:.1f} s, peak memory {fmt_bytes(g['peak_mem'])}, "
          f"SFT peak {fmt_bytes(figures['sft']['peak_mem'])}")  # fmt: skip
    print(f"training reward per step: {g['reward']}")
    print(f"KL per step: {g['kl']}")
    print(f"held-out reward while it trained (step, greedy reward on validation requests, validation loss): "
          f"{g['held_out']}")  # fmt: skip
    print(f"held-out reward ({rewards['tuned']['n']} test requests, the mean of {args.reward_draws} generations "
          f"each, weights {report['rewards']['tuned']['weights']}):")  # fmt: skip
    for who, r in rewards.items():
        parts = ", ".join(f"{k} {v:.3f}" for k, v in r["parts"].items())
        print(
            f"  {who:<6} {r['mean']:.3f} ± {r['std']:.3f}  95% interval {r['low']:.3f} to {r['high']:.3f}  ({parts})"
        )
    for who, g in report["reward_gains"].items():
        print(
            f"  round - {who}: {g['mean']:+.3f} (95% interval {g['low']:+.3f} to {g['high']:+.3f}), "
            f"higher on {g['higher']} of {g['n']}, lower on {g['lower']}"
        )
    print(json.dumps({"args": vars(args), "figures": figures, "held_out_reward": rewards,
                      "reward_gains": report["reward_gains"],
                      "wall_s": time.time() - started, "load": os.getloadavg(), "work": str(work)}))  # fmt: skip


if __name__ == "__main__":
    main()
