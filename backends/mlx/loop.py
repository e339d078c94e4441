"""The MLX training loop: LoRA steps with accumulation and clipping, validation, early stopping,
and checkpoints a resumed run continues from exactly.

mlx-lm's `trainer.train` counts micro-batches rather than optimizer steps and has no hook to
restore optimizer state or a data position, to stop on request, to clip gradients or to feed
packed rows with block-diagonal attention; those are what this small loop adds around
mlx-lm's model, LoRA layers and optimizers.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from localft.backends.mlx.batches import Batch, RowStream, collate, eval_rows
from localft.backends.mlx.modeling import load_adapter_weights, output_head, save_adapter, segment_attention
from localft.checkpoints import read_state, require_checkpoint_space, write_state
from localft.config import TrainSpec
from localft.data.chat_tokens import IGNORE
from localft.events import Checkpoint, Emit, Eval, Log, Step
from localft.runs import RunDir, atomic_dir

OPTIMIZER_FILE = "optimizer.safetensors"


def lr_schedule(spec: TrainSpec) -> Callable:
    """Linear warm-up to the peak rate, then cosine or linear decay to zero at `spec.steps`.
    Takes the 0-based optimizer step (an mx.array inside the optimizer, or an int)."""
    peak, warm, total = spec.learning_rate, spec.warmup_steps, spec.steps

    def rate(step):
        s = mx.array(step, mx.float32)
        warmup = peak * (s + 1) / max(warm, 1)
        progress = mx.clip((s - warm) / max(total - warm, 1), 0.0, 1.0)
        if spec.schedule == "cosine":
            decayed = peak * 0.5 * (1 + mx.cos(math.pi * progress))
        elif spec.schedule == "linear":
            decayed = peak * (1 - progress)
        else:
            decayed = mx.array(peak, mx.float32)
        return mx.where(s < warm, warmup, decayed)

    return rate


def masked_loss(model: nn.Module, inputs, targets, segments, positions=None, packed: bool = False):
    """Summed cross-entropy over trained targets, and their count. With `positions` (flat indices
    of the trained targets) only those rows go through the vocabulary projection: on a small
    model with a 49k vocabulary that projection is most of the compute, and prompts are not
    trained, so this skips a large share of the work without changing the loss."""
    head = output_head(model) if positions is not None else None
    context = segment_attention(model, segments) if packed else contextlib.nullcontext()
    with context:
        hidden = model.model(inputs) if head is not None else None
        logits = model(inputs) if head is None else None
    if head is not None:
        picked = hidden.reshape(-1, hidden.shape[-1])[positions]
        ce = nn.losses.cross_entropy(head(picked).astype(mx.float32), targets.reshape(-1)[positions])
        return ce.sum(), mx.array(positions.size)
    mask = targets != IGNORE
    ce = nn.losses.cross_entropy(logits.astype(mx.float32), mx.where(mask, targets, 0)) * mask
    return ce.sum(), mask.sum()


@dataclass
class LoopState:
    """What a checkpoint stores besides weights: enough to continue exactly."""

    step: int = 0
    rows: int = 0  # data position: rows consumed by the stream
    tokens: int = 0  # real input tokens trained so far
    trained_tokens: int = 0  # tokens that carried loss
    train_seconds: float = 0.0
    best_val_loss: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    stopped_early: bool = False  # a resumed run does not train past early stopping
    history: list = field(default_factory=list)  # (step, val_loss)


class MlxTrainer:
    """Drives one run: `run_steps()` trains from the current state to spec.steps or a stop."""

    def __init__(self, spec: TrainSpec, run: RunDir, model, adapter_cfg: dict, train_ex, valid_ex,
                 packed: bool, pad_id: int, emit: Emit, device: str):  # fmt: skip
        self.spec, self.run, self.model, self.adapter_cfg = spec, run, model, adapter_cfg
        self.valid_ex, self.packed, self.pad_id, self.emit, self.device = (
            valid_ex,
            packed,
            pad_id,
            emit,
            device,
        )
        self.state = LoopState()
        # Projecting only trained positions gives each batch its own shape: eager (CPU) runs only.
        self.project_trained_only = device == "cpu" and output_head(model) is not None
        self.optimizer = optim.AdamW(
            learning_rate=lr_schedule(spec), weight_decay=spec.weight_decay, bias_correction=True
        )
        self.optimizer.init(model.trainable_parameters())
        self.train_ex = train_ex
        self.stream = RowStream(train_ex, spec.max_seq_len, packed, spec.seed)
        self._build_steps()

    def _build_steps(self) -> None:
        model, optimizer, spec = self.model, self.optimizer, self.spec
        value_and_grad = nn.value_and_grad(model, partial(masked_loss, packed=self.packed))

        def micro_step(*arrays):
            (loss_sum, ntok), grads = value_and_grad(model, *arrays)
            return loss_sum, ntok, grads

        def apply_update(grads, ntok):
            # Gradients of summed losses over all micro-batches / their token count = the exact
            # token-weighted mean, however the batch is split into accumulation steps.
            grads = tree_map(lambda g: g / ntok, grads)
            if spec.max_grad_norm > 0:
                grads, _ = optim.clip_grad_norm(grads, spec.max_grad_norm)
            optimizer.update(model, grads)

        if self.device == "gpu":
            # Compiling pays off on Metal. On mlx[cpu] each new batch shape costs 8-50 s of C++
            # compilation and the steps measured no faster, so the CPU path runs eagerly.
            state = [model.state, optimizer.state, mx.random.state]
            micro_step = mx.compile(micro_step, inputs=state, outputs=state)
            apply_update = mx.compile(apply_update, inputs=state, outputs=state)
        self._micro_step, self._apply_update = micro_step, apply_update
        self._eval_loss = partial(masked_loss, model, packed=self.packed)

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        trainable = sum(v.nbytes for _, v in tree_flatten(self.model.trainable_parameters()))
        require_checkpoint_space(self.run, self.state.step, trainable)
        target = self.run.checkpoint_path(self.state.step)
        with atomic_dir(target) as tmp:
            save_adapter(self.model, self.adapter_cfg, tmp)
            mx.save_safetensors(str(tmp / OPTIMIZER_FILE), dict(tree_flatten(self.optimizer.state)))
            write_state(tmp, vars(self.state))  # last: marks the folder complete
        self.emit(Checkpoint(self.state.step, str(target)))
        return target

    def restore(self, folder: Path) -> None:
        load_adapter_weights(self.model, folder)
        saved = mx.load(str(folder / OPTIMIZER_FILE))
        self.optimizer.state = tree_unflatten(list(saved.items()))
        self.state = LoopState(**read_state(folder))
        self.stream = RowStream(
            self.train_ex, self.spec.max_seq_len, self.packed, self.spec.seed, self.state.rows
        )
        mx.eval(self.model.parameters(), self.optimizer.state)
        self._build_steps()  # the compiled steps captured the old state containers

    # -- training ------------------------------------------------------------------------------

    def _batch_arrays(self, batch: Batch) -> tuple:
        arrays = (mx.array(batch.inputs), mx.array(batch.targets), mx.array(batch.segments))
        if not self.project_trained_only:
            return arrays
        return (*arrays, mx.array(np.flatnonzero(batch.targets != IGNORE).astype(np.int32)))

    def train_step(self) -> tuple[float, int, int]:
        """One optimizer step: (mean loss, real tokens, trained tokens)."""
        spec, step = self.spec, self.state.step
        # The RNG (LoRA dropout) is a function of the step, so a resumed run draws the same masks.
        mx.random.seed(spec.seed * 1_000_003 + step)
        grads, loss_sum, ntok, real, trained = None, mx.array(0.0), mx.array(0), 0, 0
        for _ in range(spec.grad_accum):
            batch = collate(self.stream.take(spec.batch_size), self.pad_id)
            loss, n, g = self._micro_step(*self._batch_arrays(batch))
            grads = g if grads is None else tree_map(mx.add, grads, g)
            loss_sum, ntok = loss_sum + loss, ntok + n
            real, trained = real + batch.real_tokens, trained + batch.trained_tokens
            mx.eval(grads, loss_sum, ntok)
        self._apply_update(grads, mx.maximum(ntok, 1).astype(mx.float32))
        mx.eval(self.model.state, self.optimizer.state)
        return (loss_sum / mx.maximum(ntok, 1)).item(), real, trained

    def evaluate(self) -> float:
        self.model.eval()
        rows = eval_rows(self.valid_ex, self.spec.max_seq_len, self.packed)
        total, count = 0.0, 0
        size = self.spec.batch_size
        for i in range(0, min(len(rows), size * self.spec.eval_batches), size):
            loss, n = self._eval_loss(*self._batch_arrays(collate(rows[i : i + size], self.pad_id)))
            total, count = total + loss.item(), count + n.item()
        self.model.train()
        return total / max(count, 1)

    def _after_eval(self, val_loss: float) -> bool:
        """Track the best adapter; True when early stopping says stop."""
        st = self.state
        st.history.append((st.step, val_loss))
        self.emit(Eval(st.step, val_loss))
        if st.best_val_loss is None or val_loss < st.best_val_loss:
            st.best_val_loss, st.best_step, st.evals_since_best = val_loss, st.step, 0
            with atomic_dir(self.run.best_adapter_dir) as tmp:
                save_adapter(self.model, self.adapter_cfg, tmp)
            return False
        st.evals_since_best += 1
        patience = self.spec.early_stopping_patience
        if patience and st.evals_since_best >= patience:
            st.stopped_early = True
            self.emit(Log(f"early stopping: no better validation loss for {patience} evaluations "
                          f"(best {st.best_val_loss:.4f} at step {st.best_step})"))  # fmt: skip
            return True
        return False

    def run_steps(self, stop: Callable[[], bool]) -> None:
        spec, st = self.spec, self.state
        self.model.train()
        saved_at = st.step
        while st.step < spec.steps and not st.stopped_early:
            tic = time.perf_counter()
            loss, real, trained = self.train_step()
            elapsed = time.perf_counter() - tic
            st.step += 1
            st.rows = self.stream.position
            st.tokens += real
            st.trained_tokens += trained
            st.train_seconds += elapsed
            if st.step % spec.log_every == 0 or st.step == spec.steps:
                lr = float(np.asarray(lr_schedule(spec)(st.step - 1)))
                self.emit(Step(st.step, spec.steps, loss, lr, st.tokens, real / max(elapsed, 1e-9),
                               int(mx.get_peak_memory())))  # fmt: skip
            early_stop = False
            if self.valid_ex and (st.step % spec.eval_every == 0 or st.step == spec.steps):
                early_stop = self._after_eval(self.evaluate())
            last = st.step == spec.steps or early_stop or stop()
            if st.step % spec.save_every == 0 or last:
                self.save_checkpoint()
                saved_at = st.step
            if last:
                break
        if saved_at != st.step:
            self.save_checkpoint()
        self.write_final_adapter()

    def write_final_adapter(self) -> None:
        """run.adapter_dir: the best adapter by validation loss when validation ran, else the last."""
        best = self.run.best_adapter_dir
        with atomic_dir(self.run.adapter_dir) as tmp:
            if self.state.best_step is not None and (best / "adapters.safetensors").is_file():
                for name in ("adapters.safetensors", "adapter_config.json"):
                    (tmp / name).write_bytes((best / name).read_bytes())
            else:
                save_adapter(self.model, self.adapter_cfg, tmp)
