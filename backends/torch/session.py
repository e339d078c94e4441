"""The torch side of the training loop (localft.train): a peft model and its AdamW on the plan's
device, one micro-batch's forward and backward, the optimizer step, and the tensors on disk; on
several processes the model runs under DDP or FSDP2 (.distributed)."""

from __future__ import annotations

from pathlib import Path

from localft.errors import ConfigError
from localft.events import Log
from localft.train.rows import Batch
from localft.train.session import LoadRequest

from . import distributed
from .device import (
    ADAPTER_WEIGHTS,
    OPTIMIZER_FILE,
    autocast,
    evaluating,
    oom_as_core_error,
    peak_memory,
    set_threads,
)
from .loss import liger_available, token_loss_sum
from .modeling import Placement, build_full_model, build_lora_model, check_device, load_full_weights


def make_optimizer(model, spec, where: Placement):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if (
        where.device == "cuda" and spec.quantize == "4bit" and spec.sharding == "none"
    ):  # paged: not for shards
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(params, lr=spec.learning_rate, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(params, lr=spec.learning_rate, weight_decay=spec.weight_decay)


class TorchSession:
    pad_multiple = 1

    def __init__(self, request: LoadRequest) -> None:
        spec, plan = request.spec, request.plan
        self.where = Placement(check_device(plan.device), plan.precision)
        self.device = self.where.device
        self.sharded = plan.sharding == "fsdp"
        if self.sharded and spec.method != "sft":
            raise ConfigError(f"{spec.method} (preference tuning) is not sharded; use --set sharding=none")
        self.world = distributed.join_group(self.device, self.sharded, spec.collective_timeout_s)
        if self.device == "cpu":
            set_threads(self.world.size)
        self.liger = liger_available(self.device)
        spec = spec.model_copy(update={"quantize": plan.quantize, "sharding": plan.sharding})
        self.full = spec.weights == "full"
        self.model = self.build_model(request.model_dir, spec)
        self.model.train()
        # Several processes (or FSDP): the loss runs as a DDP/FSDP module; else the model directly.
        self.runner = None
        if self.world.several or self.sharded:
            self.runner = distributed.wrap(self.model, self.world, self.device, plan.sharding, self.liger)
        self.optimizer = make_optimizer(self.model, spec, self.where)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.max_grad_norm = spec.max_grad_norm
        loss = self.loss_name()
        request.emit(Log(f"torch on {self.device} ({plan.precision}{', 4-bit base' if plan.quantize == '4bit' else ''}): "
                         f"{sum(p.numel() for p in self.params):,} trainable parameters, {loss}"
                         f"{self.describe_world()}"))  # fmt: skip

    def describe_world(self) -> str:
        if self.runner is None:
            return ""
        how = "FSDP2 (fully_shard)" if self.sharded else "DDP"
        return f"; {self.world.size} process{'es' if self.world.several else ''} with {how}"

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return distributed.all_reduce_sum(values, self.device) if self.world.several else list(values)

    def _loss_sum(self, batch: Batch):
        if self.runner is not None:
            return self.runner(batch)
        return token_loss_sum(self.model, batch, self.device, self.liger)

    def build_model(self, model_dir: Path, spec):
        if self.full:  # every weight trains; what is saved is the whole model (an HF folder)
            return build_full_model(model_dir, spec, self.where, liger=self.liger)
        return build_lora_model(model_dir, spec, self.where, liger=self.liger)

    def loss_name(self) -> str:
        return "Liger-Kernel's fused linear cross-entropy" if self.liger else "chunked cross-entropy"

    def packing_blocker(self) -> str | None:
        return None  # restarting position ids keep packed examples apart in every attention kernel used

    def seed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)

    def accumulate(self, batch: Batch, scale: float) -> float:
        with oom_as_core_error():
            with autocast(self.where):
                loss_sum, _ = self._loss_sum(batch)
            (loss_sum * scale).backward()
        return float(loss_sum.detach())

    def apply_update(self, learning_rate: float) -> None:
        import torch

        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def discard_gradients(self) -> None:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        if self.device == "cuda":
            torch.cuda.empty_cache()

    def eval_loss(self, batch: Batch) -> tuple[float, int]:
        with evaluating(self):
            loss_sum, n = self._loss_sum(batch)
        return float(loss_sum), n

    def save_adapter(self, folder: Path) -> None:
        """A peft adapter folder (adapter_config.json + adapter_model.safetensors); with full
        fine-tuning, the whole model as an HF folder (config.json + model*.safetensors). Sharded:
        gathered on every rank, written by rank 0."""
        if self.sharded:
            state = distributed.full_state_dict(self.runner, trainable_only=not self.full)
            if self.world.is_writer:
                self.model.save_pretrained(folder, state_dict=state, safe_serialization=True)
        elif self.world.is_writer:
            self.model.save_pretrained(folder, safe_serialization=True)

    def save_training_state(self, folder: Path) -> None:
        import torch

        self.save_adapter(folder)
        if self.sharded:  # full state dicts: every rank gathers, rank 0 writes
            weights = distributed.full_state_dict(self.runner, trainable_only=True)
            optimizer = distributed.full_optimizer_state(self.runner, self.optimizer)
            if self.world.is_writer:
                torch.save(weights, Path(folder) / distributed.TRAINABLE_FILE)
                torch.save(optimizer, Path(folder) / OPTIMIZER_FILE)
        elif self.world.is_writer:
            torch.save(self.optimizer.state_dict(), Path(folder) / OPTIMIZER_FILE)

    def load_training_state(self, folder: Path) -> None:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if self.sharded:
            distributed.load_full_state(self.runner, self.optimizer, Path(folder))
            return
        device = str(self.params[0].device)
        if self.full:
            load_full_weights(self.model, Path(folder), device)
        else:
            set_peft_model_state_dict(self.model, load_file(Path(folder) / ADAPTER_WEIGHTS, device=device))
        state = torch.load(Path(folder) / OPTIMIZER_FILE, map_location=device, weights_only=True)
        self.optimizer.load_state_dict(state)

    # Preference tuning (localft.train.preference_loop): the framework side, in .preference.
    def load_adapter(self, folder: Path) -> None:
        from .preference import load_adapter

        load_adapter(self, folder)

    def sequence_logps(self, batch: Batch):
        from .preference import no_grad_logps

        return no_grad_logps(self, batch)

    def accumulate_objective(self, batch: Batch, objective, scale: float, per_token: bool = False) -> float:
        from .preference import accumulate_objective

        return accumulate_objective(self, batch, objective, scale, per_token)

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

    def trainable_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.params)

    def peak_memory(self) -> int:
        return peak_memory(self.device)
