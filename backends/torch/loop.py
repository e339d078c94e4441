"""The torch training loop: build, resume, step (with accumulation), evaluate, checkpoint, and
translate all of it into events. Reads top to bottom in `train`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

from localft.checkpoints import find_resume_checkpoint, require_checkpoint_space, resume_checkpoint
from localft.config import TrainSpec
from localft.errors import DoesNotFit, RunError
from localft.events import Checkpoint, Emit, Eval, Log, RunStarted, Step
from localft.runs import RunDir, atomic_dir

from .checkpoint import LoopState, load_checkpoint, save_adapter, save_checkpoint, trainable_bytes
from .data import RowStream, collate, eval_rows, tokenize_split
from .modeling import Placement, build_lora_model, packing_for, placement, token_loss_sum, torch_dtype


class StopTraining(Exception):
    """Raised inside the loop when stop() turned true or early stopping triggered."""


def set_threads() -> None:
    """One thread per physical core: hyper-threads only contend for the same FMA units."""
    import psutil
    import torch

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    try:
        cores = min(cores, len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    torch.set_num_threads(max(cores, 1))


def peak_memory(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    if device == "mps":
        return int(torch.mps.driver_allocated_memory())
    import sys

    if sys.platform == "win32":  # no `resource` module; psutil reads the peak working set
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def available_memory(device: str) -> tuple[int, str]:
    import torch

    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return int(free), "GPU memory"
    import psutil

    return int(psutil.virtual_memory().available), "RAM"


def check_memory(spec: TrainSpec, model_dir, device: str) -> None:
    from localft.memory import check_fits, estimate_memory

    available, where = available_memory(device)
    check_fits(estimate_memory(spec, model_dir, device), available, where)


def make_optimizer(model, spec: TrainSpec, where: Placement):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if where.device == "cuda" and spec.quantize == "4bit":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(params, lr=spec.learning_rate, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=spec.weight_decay)


def make_scheduler(optimizer, spec: TrainSpec):
    from transformers import get_scheduler

    name = "constant_with_warmup" if spec.schedule == "constant" else spec.schedule
    return get_scheduler(name, optimizer, num_warmup_steps=spec.warmup_steps, num_training_steps=spec.steps)


def autocast(where: Placement):
    import contextlib

    import torch

    if where.device == "cpu" or where.dtype_name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(where.device, dtype=torch_dtype(where.dtype_name))


def is_oom(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory, or the CPU allocator refusing an allocation."""
    import torch

    text = str(exc).lower()
    return (
        isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text
    )


class Trainer:
    """Holds the model, optimizer and counters of one run; `run()` drives it to the end."""

    def __init__(self, spec: TrainSpec, run: RunDir, emit: Emit, stop: Callable[[], bool]):
        self.spec, self.run_dir, self.emit, self.stop = spec, run, emit, stop

    def setup(self) -> None:
        import torch
        from transformers import AutoTokenizer

        from localft.models import resolve_model

        spec = self.spec
        self.where = placement(spec)
        if self.where.device == "cpu":
            set_threads()
        self.model_dir = resolve_model(spec.model)
        check_memory(spec, self.model_dir, self.where.device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id or 0
        run = self.run_dir
        max_len, on = spec.max_seq_len, spec.train_on
        self.train_examples = tokenize_split(self.tokenizer, run.split_path("train"), max_len, on)
        valid = tokenize_split(self.tokenizer, run.split_path("valid"), max_len, on)
        self.packing, why_not = packing_for(self.model_dir, spec)
        if why_not:
            self.emit(Log(f"packing is off: {why_not}", "warning"))
        self.valid_rows = eval_rows(valid, max_len, self.packing)
        torch.manual_seed(spec.seed)
        self.model = build_lora_model(self.model_dir, spec, self.where)
        self.model.train()
        self.optimizer = make_optimizer(self.model, spec, self.where)
        self.scheduler = make_scheduler(self.optimizer, spec)
        self.state = LoopState(batch_size=spec.batch_size, grad_accum=spec.grad_accum)
        self.saved_step = None  # the step of the newest checkpoint this run can rely on
        resume_from = resume_checkpoint(run, self.emit)
        if resume_from is not None:
            self.state = load_checkpoint(resume_from, self.model, self.optimizer, self.scheduler)
            self.saved_step = self.state.step
        self.stream = RowStream(self.train_examples, max_len, self.packing, spec.seed, self.state.position)

    def run(self) -> None:
        spec, state = self.spec, self.state
        self.emit(RunStarted(self.run_dir.id, "torch", spec.model, self.where.device, spec.steps, state.step))
        if state.step >= spec.steps or state.stopped_early:
            self.finish()
            return
        window_start, window_tokens = time.perf_counter(), 0
        try:
            while state.step < spec.steps:
                if self.stop():
                    raise StopTraining("stopped")
                loss, tokens = self.train_step()
                state.step += 1
                state.tokens += tokens
                window_tokens += tokens
                last = state.step == spec.steps
                if state.step % spec.log_every == 0 or last:
                    elapsed = max(time.perf_counter() - window_start, 1e-9)
                    lr = self.scheduler.get_last_lr()[0]
                    peak = peak_memory(self.where.device)
                    self.emit(
                        Step(state.step, spec.steps, loss, lr, state.tokens, window_tokens / elapsed, peak)
                    )
                    window_start, window_tokens = time.perf_counter(), 0
                if self.valid_rows and (state.step % spec.eval_every == 0 or last):
                    self.evaluate()
                if state.step % spec.save_every == 0 and not last:
                    self.checkpoint()
        except StopTraining as reason:
            self.emit(Log(f"training {reason} at step {state.step}; writing a checkpoint"))
        self.finish()

    def train_step(self) -> tuple[float, int]:
        """One optimizer step; on out-of-memory with auto_batch, halve the micro-batch and retry."""
        start = self.stream.position
        while True:
            try:
                return self._train_step()
            except Exception as exc:
                if not is_oom(exc):
                    raise
                self._recover_from_oom(exc, start)

    def _recover_from_oom(self, exc: BaseException, start: int) -> None:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        if self.where.device == "cuda":
            torch.cuda.empty_cache()
        s = self.state
        if not self.spec.auto_batch or s.batch_size == 1:
            raise DoesNotFit(
                f"out of memory at step {s.step + 1} with micro-batch {s.batch_size} x "
                f"{self.spec.max_seq_len} tokens; try --batch-size {max(s.batch_size // 2, 1)} "
                f"--grad-accum {s.grad_accum * 2}, a shorter --max-seq-len, --gradient-checkpointing "
                f"or --auto-batch"
            ) from None
        s.batch_size //= 2
        s.grad_accum *= 2
        self.emit(
            Log(f"out of memory: retrying with micro-batch {s.batch_size} x {s.grad_accum} steps", "warning")
        )
        self.stream = RowStream(
            self.train_examples, self.spec.max_seq_len, self.packing, self.spec.seed, start
        )

    def _train_step(self) -> tuple[float, int]:
        import torch

        s = self.state
        micro = [self.stream.take(s.batch_size) for _ in range(s.grad_accum)]
        n_trained = sum(r.trained_tokens for rows in micro for r in rows)
        self.optimizer.zero_grad(set_to_none=True)
        loss_total, real_tokens = 0.0, 0
        for rows in micro:
            batch = collate(rows, self.pad_id)
            with autocast(self.where):
                loss_sum, _ = token_loss_sum(self.model, batch, self.where.device)
            # Normalise by the whole step's trained tokens, so accumulation equals one big batch.
            (loss_sum / max(n_trained, 1)).backward()
            loss_total += float(loss_sum.detach())
            real_tokens += batch["real_tokens"]
        loss = loss_total / max(n_trained, 1)
        if not math.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            ckpt, _ = find_resume_checkpoint(self.run_dir, hashes=False)
            kept = f"the last good checkpoint is {ckpt.name}" if ckpt else "no checkpoint was written yet"
            raise RunError(
                f"loss became {loss} at step {s.step + 1}; {kept}. Lower --learning-rate, use fp32/bf16 "
                f"instead of fp16, or check the data"
            )
        if self.spec.max_grad_norm > 0:
            params = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, self.spec.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        s.position = self.stream.position
        return loss, real_tokens

    def evaluate(self) -> None:
        import torch

        s, spec = self.state, self.spec
        rows = self.valid_rows[: spec.eval_batches * s.batch_size]
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(rows), s.batch_size):
                with autocast(self.where):
                    loss_sum, n = token_loss_sum(
                        self.model, collate(rows[i : i + s.batch_size], self.pad_id), self.where.device
                    )
                total, count = total + float(loss_sum), count + n
        self.model.train()
        val = total / max(count, 1)
        s.last_val_loss = val
        self.emit(Eval(s.step, val))
        if s.best_val_loss is None or val < s.best_val_loss:
            s.best_val_loss, s.best_step, s.evals_without_improvement = val, s.step, 0
            save_adapter(self.model, self.run_dir.best_adapter_dir)
            return
        s.evals_without_improvement += 1
        patience = spec.early_stopping_patience
        if patience is not None and s.evals_without_improvement >= patience:
            s.stopped_early = True
            raise StopTraining(
                f"early-stopped ({patience} evaluations without improvement; best step {s.best_step})"
            )

    def checkpoint(self) -> None:
        step = self.state.step
        require_checkpoint_space(self.run_dir, step, trainable_bytes(self.model))
        path = self.run_dir.checkpoint_path(step)
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, self.state)
        self.saved_step = step
        self.emit(Checkpoint(step, str(path)))

    def finish(self) -> None:
        """Last checkpoint, then the adapter to export: the best by validation loss, else the last."""
        import shutil

        if self.saved_step != self.state.step:
            self.checkpoint()
        best = self.run_dir.best_adapter_dir
        if self.state.best_step is not None and best.is_dir():
            with atomic_dir(self.run_dir.adapter_dir) as tmp:
                for f in best.iterdir():
                    shutil.copy2(f, tmp / f.name)
        else:
            save_adapter(self.model, self.run_dir.adapter_dir)


def train(spec: TrainSpec, run: RunDir, emit: Emit, stop: Callable[[], bool]) -> None:
    trainer = Trainer(spec, run, emit, stop)
    trainer.setup()
    trainer.run()
