"""Trained tokens/s: transformers Trainer + peft (padding collator) vs localft's torch backend, in
one process, on the same data, model, LoRA config and step count. Last line: one JSON object.

    python bench/train_throughput.py                     # CPU, embedded model (~5 min)
    python bench/train_throughput.py --model qwen2.5-0.5b-random --device cuda --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

# name -> (architecture, hidden, intermediate, layers, heads, kv heads, vocab): real configs,
# random weights (throughput does not depend on the weights' values).
RANDOM_CONFIGS = {
    "smollm2-135m-random": ("llama", 576, 1536, 30, 9, 3, 49152),
    "qwen2.5-0.5b-random": ("qwen2", 896, 4864, 24, 14, 2, 151936),
    "qwen2.5-1.5b-random": ("qwen2", 1536, 8960, 28, 12, 2, 151936),
    # A tiny body under Gemma's 262k-token vocabulary: the logits dominate a step's memory.
    "tiny-262k-vocab-random": ("llama", 256, 1024, 4, 4, 1, 262144),
    # The GPU check's CPU smoke run: its plumbing, not its figures.
    "tiny-llama-random": ("llama", 64, 128, 2, 4, 2, 49152),
}
SAMPLE_EXPORT = Path(__file__).resolve().parents[1] / "examples" / "linkedin-export.zip"
WORDS = [
    "we",
    "shipped",
    "the",
    "new",
    "release",
    "today",
    "and",
    "the",
    "team",
    "learned",
    "a",
    "lot",
    "about",
    "latency",
    "caching",
    "tests",
    "users",
    "data",
    "models",
    "coffee",
    "mornings",
    "remote",
    "work",
    "hiring",
    "feedback",
    "writing",
    "clear",
    "docs",
    "small",
    "steps",
    "measure",
    "first",
    "then",
    "optimise",
    "open",
    "source",
    "community",
    "thanks",
    "everyone",
    "who",
    "helped",
]
TOPICS = ["shipping", "hiring", "open source", "writing", "latency", "remote work", "testing", "coffee"]


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """Chat rows shaped like our dataset (system, user request, assistant post of 20-180 words)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        words = [rng.choice(WORDS) for _ in range(rng.randint(20, 180))]
        post = " ".join(words).capitalize() + "."
        rows.append(
            {
                "messages": [
                    {
                        "role": "system",
                        "content": "You write posts in the voice of Ann, a software engineer.",
                    },
                    {"role": "user", "content": f"Write a post about {topic}."},
                    {"role": "assistant", "content": post},
                ]
            }
        )
    return rows


def write_data(source: str, out: Path, examples: int) -> Path:
    """train/valid JSONL: a prepared folder, the sample LinkedIn export (the demo data) or synthetic rows."""
    out.mkdir(parents=True, exist_ok=True)
    if Path(source, "train.jsonl").is_file():
        for split in ("train", "valid"):
            shutil.copy(Path(source, f"{split}.jsonl"), out / f"{split}.jsonl")
        return out
    if source == "sample":
        from localft.config import DataSpec
        from localft.data.dataset import build_dataset

        build_dataset(SAMPLE_EXPORT, DataSpec(), out)
        return out
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(examples, 1)))
    (out / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(24, 2)))
    return out


def build_model_dir(name: str, workdir: Path, tokenizer: str | None) -> Path:
    from localft.plan.catalog import embedded_model_dir, resolve_model

    if name not in RANDOM_CONFIGS:
        return resolve_model(name)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, Qwen2Config

    arch, hidden, inter, layers, heads, kv, vocab = RANDOM_CONFIGS[name]
    tok = AutoTokenizer.from_pretrained(tokenizer or embedded_model_dir())
    config = (LlamaConfig if arch == "llama" else Qwen2Config)(
        hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=True, max_position_embeddings=32768,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    out = workdir / name
    model.save_pretrained(out)
    tok.save_pretrained(out)
    template = Path(tokenizer or embedded_model_dir()) / "chat_template.jinja"
    if template.is_file():
        (out / "chat_template.jinja").write_text(template.read_text())
    return out


class PeakRss:
    """Samples this process's RSS in a thread: ru_maxrss cannot be reset between the two runs."""

    def __init__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def measure_peak(device: str):
    import contextlib

    import torch

    if device != "cuda":
        return PeakRss()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()

    class Cuda(contextlib.AbstractContextManager):
        peak = 0

        def __exit__(self, *exc):
            self.peak = torch.cuda.max_memory_allocated()

    return Cuda()


def val_loss(model, tokenizer, examples) -> float:
    """Token-weighted mean loss on the validation examples, the same function for both runs."""
    import torch

    from localft.backends.torch.loss import token_loss_sum
    from localft.train.rows import Row, collate

    device = next(model.parameters()).device.type
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
        for ex in examples:
            row = Row(ex.input_ids, ex.labels, list(range(len(ex.input_ids))))
            s, n = token_loss_sum(model, collate([row], tokenizer.pad_token_id or 0), device)
            total, count = total + float(s), count + n
    return total / count


def run_baseline(args, spec, model_dir, train_examples, valid_examples) -> dict:
    """What a user would write: Trainer + peft + DataCollatorForSeq2Seq (pads each batch)."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    from localft.backends.torch.modeling import lora_config

    tok = AutoTokenizer.from_pretrained(model_dir)
    cuda = args.device == "cuda"
    kwargs = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if args.quantize == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
        )  # fmt: skip
        kwargs["device_map"] = {"": 0 if cuda else "cpu"}
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if args.quantize == "4bit":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    elif cuda:
        model.to("cuda")
    torch.manual_seed(spec.seed)
    model = get_peft_model(model, lora_config(spec.lora, model.config.num_hidden_layers))
    data = [{"input_ids": e.input_ids, "labels": e.labels} for e in train_examples]
    pad = DataCollatorForSeq2Seq(tok, padding=True)
    counted = {"tokens": 0}

    def collate(features):
        batch = pad(features)
        counted["tokens"] += int(batch["attention_mask"].sum())
        return batch

    targs = TrainingArguments(
        output_dir=str(Path(args.workdir) / "baseline"), per_device_train_batch_size=args.batch_size,
        max_steps=spec.steps, learning_rate=spec.learning_rate, lr_scheduler_type=spec.schedule,
        warmup_steps=spec.warmup_steps, max_grad_norm=spec.max_grad_norm, logging_steps=1_000_000,
        save_strategy="no", report_to=[], seed=spec.seed, use_cpu=not cuda, bf16=cuda,
        optim="paged_adamw_8bit" if (cuda and args.quantize == "4bit") else "adamw_torch",
        dataloader_num_workers=0,
    )  # fmt: skip
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collate)
    with measure_peak(args.device) as peak:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {
        "tokens": counted["tokens"], "seconds": seconds, "tok_per_s": counted["tokens"] / seconds,
        "peak_mem": peak.peak, "val_loss": val_loss(model, tok, valid_examples),
    }  # fmt: skip


def run_localft(args, spec, model_dir, valid_examples) -> dict:
    """localft's one training loop (localft.train) on the torch backend, on the run's plan."""
    from localft.backends import get_backend
    from localft.events import Step
    from localft.run.folder import new_run
    from localft.run.worker import run_plan
    from localft.train.loop import Loop, load_tokenizer

    run = new_run(spec, root=Path(args.workdir) / "runs")
    run.data_dir.mkdir(parents=True)
    shutil.copy(Path(args.workdir) / "data" / "train.jsonl", run.split_path("train"))
    steps: list[Step] = []
    emit = lambda e: steps.append(e) if isinstance(e, Step) else None  # noqa: E731
    loop = Loop(run, run_plan(run), emit, lambda: False, get_backend("torch"))
    loop.setup()
    with measure_peak(args.device) as peak:
        start = time.perf_counter()
        loop.run()
        seconds = time.perf_counter() - start
    tokens = steps[-1].tokens
    return {
        "tokens": tokens, "seconds": seconds, "tok_per_s": tokens / seconds, "peak_mem": peak.peak,
        "val_loss": val_loss(loop.session.model, load_tokenizer(model_dir), valid_examples),
    }  # fmt: skip


def release_memory(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def matmul_peak(device: str) -> float:
    """Measured dense matmul FLOP/s at the compute dtype (the CPU's own ceiling; on CUDA, bf16)."""
    import torch

    dtype, n, reps = (torch.bfloat16, 8192, 20) if device == "cuda" else (torch.float32, 1024, 10)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start)


def flops_per_token(model_dir: Path, spec) -> float:
    """4N for a frozen base (forward + input gradients; embedding lookup excluded, output layer
    included) plus 6 × LoRA parameters (their weights get gradients too)."""
    from localft.plan.memory import lora_params, model_shape

    s = model_shape(model_dir)
    matmul_params = s.params - s.embedding_params + s.vocab * s.hidden
    return 4 * matmul_params + 6 * lora_params(spec, s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded", help="embedded, a folder, or " + ", ".join(RANDOM_CONFIGS))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quantize", default="none", choices=["none", "4bit"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=4, help="baseline examples per step")
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument(
        "--data", default="sample", help="sample (the demo export), synthetic, or a folder of JSONL splits"
    )
    p.add_argument("--examples", type=int, default=200, help="synthetic rows")
    p.add_argument("--workdir", default=None)
    p.add_argument("--tokenizer", default=None, help="tokenizer folder for random models (default: embedded)")
    p.add_argument("--no-baseline", action="store_true", help="localft only (a second localft setting)")
    args = p.parse_args()
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="localft-bench-")
    from bench_home import use_temporary_home

    use_temporary_home(Path(args.workdir))  # the bench's runs never join the user's run list

    from transformers import AutoTokenizer

    from localft.backends.torch.device import set_threads
    from localft.config import TrainSpec
    from localft.disk import fmt_bytes
    from localft.train.rows import tokenize_split

    if args.device == "cpu":
        set_threads()  # the same thread count for both runs
    model_dir = build_model_dir(args.model, Path(args.workdir), args.tokenizer)
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = write_data(args.data, Path(args.workdir) / "data", args.examples)
    train = tokenize_split(tok, data / "train.jsonl", args.max_seq_len, "completions")
    valid = tokenize_split(tok, data / "valid.jsonl", args.max_seq_len, "completions")
    # Equal tokens per step: the baseline's batch holds batch_size examples (plus padding);
    # localft packs the same number of real tokens into as few rows as max_seq_len allows.
    per_step = math.ceil(args.batch_size * sum(len(e.input_ids) for e in train) / len(train))
    rows = math.ceil(per_step / args.max_seq_len)
    pack_len = max(math.ceil(per_step / rows), max(len(e.input_ids) for e in train))
    common = dict(
        model=str(model_dir), device=args.device, quantize=args.quantize, steps=args.steps,
        max_seq_len=pack_len, learning_rate=2e-4, warmup_steps=2, seed=0,
        eval_every=10**6, save_every=10**6, log_every=1,
    )  # fmt: skip
    spec = TrainSpec(**common, batch_size=rows)

    base = None if args.no_baseline else run_baseline(args, spec, model_dir, train, valid)
    release_memory(args.device)  # the baseline's model and optimizer must not count against localft
    ours = run_localft(args, spec, model_dir, valid)
    peak = matmul_peak(args.device)
    fpt = flops_per_token(model_dir, spec)
    for r in (base, ours):
        if r is not None:
            r["mfu"] = r["tok_per_s"] * fpt / peak
    ratio = ours["tok_per_s"] / base["tok_per_s"] if base else None

    print(
        f"\nmodel {args.model} on {args.device} ({args.quantize}), {args.steps} steps, LoRA r={spec.lora.rank}"
    )
    print(
        f"baseline: {args.batch_size} examples/step padded; localft: {rows} packed row(s) of <= {pack_len} tokens"
    )
    print(f"{'':10} {'tokens':>8} {'tok/s':>9} {'peak mem':>10} {'val loss':>9} {'MFU':>7}")
    for name, r in (("baseline", base), ("localft", ours)):
        if r is None:
            continue
        print(
            f"{name:10} {r['tokens']:>8} {r['tok_per_s']:>9.1f} {fmt_bytes(r['peak_mem']):>10} "
            f"{r['val_loss']:>9.4f} {r['mfu']:>6.1%}"
        )
    print(
        f"ratio {ratio or float('nan'):.2f}x   matmul peak {peak / 1e12:.3f} TFLOP/s   {fpt / 1e9:.2f} GFLOP/token"
    )
    figures = {
        "model": args.model, "device": args.device, "quantize": args.quantize, "steps": args.steps,
        "baseline": base, "localft": ours, "ratio": ratio, "matmul_peak_flops": peak,
        "flops_per_token": fpt,
    }  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
