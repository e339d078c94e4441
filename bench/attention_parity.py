"""Packed-row attention on CUDA: torch's varlen flash kernel vs SDPA with transformers' dense
block-diagonal mask, on the same model, LoRA weights and batch. Prints loss, gradient agreement and
fwd+bwd time for each; last line: one JSON object.

    python bench/attention_parity.py --model qwen2.5-0.5b-random --tokenizer TOKENIZER_FOLDER
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import build_model_dir, synthetic_rows

    from localft.backends.torch import modeling
    from localft.backends.torch.loss import token_loss_sum
    from localft.config import TrainSpec
    from localft.data.chat_tokens import tokenize_row
    from localft.train.rows import collate, pack_examples

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="qwen2.5-0.5b-random")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--row-len", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cuda", help="cpu only smoke-tests the script (both paths masked)")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="attn-parity-"))
    model_dir = build_model_dir(args.model, workdir, args.tokenizer)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    # The throughput benchmark's synthetic posts (20-180 words), packed into the rows.
    examples = [tokenize_row(tok, r, args.row_len) for r in synthetic_rows(args.rows * args.row_len // 40)]
    rows = pack_examples(examples, args.row_len)[: args.rows]
    batch = collate(rows, tok.pad_token_id or 0)
    per_row = [r.position_ids.count(0) for r in rows]

    spec = TrainSpec(
        model=str(model_dir), device=args.device, precision="bf16" if args.device == "cuda" else "fp32"
    )
    where = modeling.Placement(args.device, spec.precision)
    results = {}
    for label, env in (("masked", "sdpa"), ("varlen", "")):
        os.environ["LOCALFT_ATTENTION"] = env
        model = modeling.build_lora_model(model_dir, spec, where)
        impl = model.get_base_model().config._attn_implementation
        times = []
        for i in range(args.repeats + 2):
            model.zero_grad(set_to_none=True)
            sync(args.device)
            start = time.perf_counter()
            loss, n = token_loss_sum(model, batch, args.device)
            (loss / n).backward()
            sync(args.device)
            if i >= 2:
                times.append(time.perf_counter() - start)
        grads = torch.cat([p.grad.float().flatten() for p in model.parameters() if p.requires_grad])
        results[label] = {"impl": impl, "loss": float(loss.detach()) / n, "grads": grads,
                          "ms": 1000 * sorted(times)[len(times) // 2]}  # fmt: skip
        del model
        if args.device == "cuda":
            torch.cuda.empty_cache()
    m, v = results["masked"], results["varlen"]
    cos = float(torch.nn.functional.cosine_similarity(m["grads"], v["grads"], dim=0))
    tokens = int(batch.real_tokens)
    print(
        f"{args.model}, {len(rows)} rows x {args.row_len} (examples per row {per_row}), {tokens} tokens, {where.dtype_name} on {args.device}"
    )
    for label in ("masked", "varlen"):
        r = results[label]
        print(
            f"{label:7s} {r['impl']:15s} loss {r['loss']:.5f}  fwd+bwd {r['ms']:.1f} ms  {tokens / r['ms'] * 1000:,.0f} tok/s"
        )
    print(f"gradient cosine {cos:.6f}, speedup {m['ms'] / v['ms']:.2f}x")
    print(json.dumps({"model": args.model, "rows": len(rows), "row_len": args.row_len, "tokens": tokens,
                      "loss_masked": m["loss"], "loss_varlen": v["loss"], "grad_cosine": cos,
                      "ms_masked": m["ms"], "ms_varlen": v["ms"], "speedup": m["ms"] / v["ms"],
                      "impl_varlen": v["impl"]}))  # fmt: skip


if __name__ == "__main__":
    main()
