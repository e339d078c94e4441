"""The MLX side of the training loop (localft.train): mlx-lm's model with LoRA/DoRA layers and an
AdamW on the plan's device, one micro-batch's gradients, the optimizer step, and the tensors on disk.

mlx-lm's own `trainer.train` has no hook for an outside loop's order, resume, stop or
out-of-memory handling; this uses its model, LoRA layers and optimizers only."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from localft.data.chat_tokens import IGNORE
from localft.errors import BackendUnavailable, ConfigError
from localft.events import Log
from localft.train.rows import Batch
from localft.train.session import LoadRequest, OutOfMemory
from localft.train.world import World

from .distributed import all_reduce_sum, average_gradients, join_group
from .loss import masked_loss
from .modeling import (
    adapter_config,
    add_adapters,
    enable_grad_checkpoint,
    load_adapter_weights,
    load_base,
    mlx_dtype,
    output_head,
    packing_blocker,
    save_adapter,
    set_memory_limit,
    trainable_count,
)

OPTIMIZER_FILE = "optimizer.safetensors"


def select_device(device: str) -> str:
    """The plan's device ('gpu' = Metal, or 'cpu'), made MLX's default."""
    if device not in ("gpu", "cpu"):
        raise ConfigError(f"device {device!r} is not an MLX device; use --device auto, gpu or cpu")
    if device == "gpu" and not mx.metal.is_available():
        raise BackendUnavailable("MLX has no GPU on this machine (Metal is Apple-only); use --device cpu")
    mx.set_default_device(mx.cpu if device == "cpu" else mx.gpu)
    return device


def is_oom(exc: BaseException) -> bool:
    """MLX raises a RuntimeError when an allocation passes its memory limit or the device's."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("memory" in text or "alloc" in text)


def batch_arrays(batch: Batch, trained_only: bool = False) -> tuple:
    """masked_loss's arguments for a batch: inputs and next-token targets, shifted, and the segments
    that keep packed examples apart; with `trained_only`, the flat indices of the trained targets."""
    inputs, targets = batch.input_ids[:, :-1], batch.labels[:, 1:]
    arrays = (mx.array(inputs, mx.int32), mx.array(targets, mx.int32), mx.array(batch.segments()[:, :-1]))
    if not trained_only:
        return arrays
    return (*arrays, mx.array(np.flatnonzero(targets != IGNORE).astype(np.int32)))


class MlxSession:
    def __init__(self, request: LoadRequest) -> None:
        from localft.disk import fmt_bytes
        from localft.plan.catalog import catalog_entry

        spec, plan = request.spec, request.plan
        self.device = select_device(plan.device)
        self.world = World.from_env()  # one process unless mlx.launch started this one
        self.group = join_group(self.world)
        limit = set_memory_limit()
        # An mlx-community 4-bit catalog id resolves to the full-precision weights (the merge source);
        # naming it asks for QLoRA, so the base is quantized here the same way.
        entry = catalog_entry(spec.model)
        quantize = plan.quantize == "4bit" or (entry is not None and spec.model == entry.mlx_id)
        self.model, config = load_base(request.model_dir, mlx_dtype(plan.precision), quantize=quantize)
        mx.random.seed(spec.seed)  # LoRA initialisation
        if spec.weights == "full":  # mlx-lm's own layout: every weight trains and is saved as the "adapter"
            if quantize or "quantization" in config:
                raise ConfigError(
                    "full fine-tuning needs a full-precision base; use --set weights=lora for a 4-bit one"
                )
            self.adapter_cfg = {"fine_tune_type": "full", "num_layers": len(self.model.layers)}
            self.model.unfreeze()
        else:
            self.adapter_cfg = adapter_config(self.model, spec.lora)
            add_adapters(self.model, self.adapter_cfg)
        if spec.gradient_checkpointing:
            enable_grad_checkpoint(self.model)
        self.model.train()
        self.max_grad_norm = spec.max_grad_norm
        self.optimizer = optim.AdamW(
            learning_rate=spec.learning_rate, weight_decay=spec.weight_decay, bias_correction=True
        )
        self.optimizer.init(self.model.trainable_parameters())
        # Compiled steps want few shapes: widths in multiples of 32 on Metal; eager CPU runs take any.
        self.pad_multiple = 32 if self.device == "gpu" else 1
        # Gathering the trained positions gives each batch its own shape: eager (CPU) runs only.
        self.trained_only = self.device == "cpu" and output_head(self.model) is not None
        self.grads = None
        self._build_steps()
        quant = "4-bit base (QLoRA)" if "quantization" in config else "full-precision base"
        request.emit(Log(f"MLX on {self.device}: {trainable_count(self.model):,} trainable parameters, {quant}, "
                         f"memory limit {fmt_bytes(limit)}"))  # fmt: skip

    def _build_steps(self) -> None:
        model, optimizer = self.model, self.optimizer

        def micro_step(packed, *arrays):
            return nn.value_and_grad(model, partial(masked_loss, packed=packed))(model, *arrays)

        def apply_update(grads):
            if self.max_grad_norm > 0:
                grads, _ = optim.clip_grad_norm(grads, self.max_grad_norm)
            optimizer.update(model, grads)

        self._micro = {packed: partial(micro_step, packed) for packed in (False, True)}
        self._apply = apply_update
        if self.device == "gpu":
            # Compiling pays off on Metal. On mlx[cpu] each new batch shape costs 8-50 s of C++
            # compilation and the steps measured no faster, so the CPU path runs eagerly.
            state = [model.state, optimizer.state, mx.random.state]
            self._micro = {k: mx.compile(f, inputs=state, outputs=state) for k, f in self._micro.items()}
            self._apply = mx.compile(apply_update, inputs=state, outputs=state)

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return all_reduce_sum(self.group, values)

    def packing_blocker(self) -> str | None:
        return packing_blocker(self.model)

    def seed(self, seed: int) -> None:
        mx.random.seed(seed)

    def accumulate(self, batch: Batch, scale: float) -> float:
        try:
            (loss, _), grads = self._micro[batch.packed](*batch_arrays(batch, self.trained_only))
            grads = tree_map(lambda g: g * scale, grads)
            self.grads = grads if self.grads is None else tree_map(mx.add, self.grads, grads)
            mx.eval(self.grads, loss)
        except RuntimeError as exc:
            if not is_oom(exc):
                raise
            raise OutOfMemory(str(exc).splitlines()[0]) from None
        return loss.item()

    def apply_update(self, learning_rate: float) -> None:
        self.optimizer.learning_rate = mx.array(learning_rate, mx.float32)
        # Averaged before clipping, as one process would clip the gradient of the whole batch.
        self._apply(average_gradients(self.group, self.grads))
        self.grads = None
        mx.eval(self.model.state, self.optimizer.state)

    def discard_gradients(self) -> None:
        self.grads = None
        mx.clear_cache()

    def eval_loss(self, batch: Batch) -> tuple[float, int]:
        self.model.eval()
        try:
            loss, n = masked_loss(self.model, *batch_arrays(batch, self.trained_only), packed=batch.packed)
            return loss.item(), int(n.item())
        except RuntimeError as exc:
            if not is_oom(exc):
                raise
            raise OutOfMemory(str(exc).splitlines()[0]) from None
        finally:
            self.model.train()

    def save_adapter(self, folder: Path) -> None:
        """mlx-lm's layout: adapters.safetensors + adapter_config.json. Every rank holds the same
        weights: rank 0 alone writes them."""
        if self.world.is_writer:
            save_adapter(self.model, self.adapter_cfg, Path(folder))

    def save_training_state(self, folder: Path) -> None:
        if not self.world.is_writer:
            return
        self.save_adapter(folder)
        mx.save_safetensors(str(Path(folder) / OPTIMIZER_FILE), dict(tree_flatten(self.optimizer.state)))

    def load_training_state(self, folder: Path) -> None:
        load_adapter_weights(self.model, folder)
        saved = mx.load(str(Path(folder) / OPTIMIZER_FILE))
        self.optimizer.state = tree_unflatten(list(saved.items()))
        mx.eval(self.model.parameters(), self.optimizer.state)
        self._build_steps()  # compiled steps captured the old state containers

    # Preference tuning (localft.train.preference_loop): the framework side, in .preference.
    def load_adapter(self, folder: Path) -> None:
        load_adapter_weights(self.model, folder)
        mx.eval(self.model.parameters())

    def sequence_logps(self, batch: Batch):
        from .preference import no_grad_logps

        return no_grad_logps(self, batch)

    def keep_reference(self) -> None:
        from .preference import keep_reference

        keep_reference(self)

    def reference_logps(self, batch: Batch):
        from .preference import reference_token_logps

        return reference_token_logps(self, batch)

    def draft(self, prompts: list[list[int]], group_size: int, max_new_tokens: int, seed: int,
              stop_ids: list[int], temperature: float = 1.0) -> list[list[list[int]]]:  # fmt: skip
        from .preference import draft

        return draft(self, prompts, group_size, max_new_tokens, seed, stop_ids, temperature)

    def accumulate_objective(self, batch: Batch, objective, scale: float, per_token: bool = False) -> float:
        from .preference import accumulate_objective

        try:
            return accumulate_objective(self, batch, objective, scale, per_token)
        except RuntimeError as exc:
            if not is_oom(exc):
                raise
            raise OutOfMemory(str(exc).splitlines()[0]) from None

    def trainable_bytes(self) -> int:
        return sum(v.nbytes for _, v in tree_flatten(self.model.trainable_parameters()))

    def peak_memory(self) -> int:
        return int(mx.get_peak_memory())
