"""The torch side of preference tuning: the array namespace the core's losses run in, and the
per-sequence log-probabilities of a batch's completions (summed over their trained tokens)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOG_HALF = -0.6931471805599453  # log(1 - exp(x)) switches formula here to stay accurate


class TorchOps:
    log_sigmoid = staticmethod(F.logsigmoid)
    sigmoid = staticmethod(torch.sigmoid)
    where = staticmethod(torch.where)
    exp = staticmethod(torch.exp)

    @staticmethod
    def log1mexp(x):
        return torch.where(x < LOG_HALF, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))

    @staticmethod
    def clip_min(x, low: float):
        return x.clamp(min=low)

    @staticmethod
    def clip_max(x, high: float):
        return x.clamp(max=high)

    @staticmethod
    def stop_gradient(x):
        return x.detach()

    @staticmethod
    def asarray(values, like):
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)


OPS = TorchOps()


def sequence_logps(model, batch, device: str, use_liger: bool = False):
    """(summed log-prob of each row's trained tokens, their count) of a localft.train Batch, with
    the training loss's own path (the vocabulary projection chunked, on trained positions only)."""
    from .loss import token_loss_sum

    sums, counts = token_loss_sum(model, batch, device, use_liger, per_row=True)
    return -sums, counts.float()


def load_adapter(session, folder) -> None:
    """Start from a finished run's adapter (a preference round continues from SFT's)."""
    from pathlib import Path

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    device = str(session.params[0].device)
    set_peft_model_state_dict(
        session.model, load_file(Path(folder) / "adapter_model.safetensors", device=device)
    )


def no_grad_logps(session, batch):
    """(log-probs, token counts) of each row as numpy arrays: the reference, or validation."""
    from .device import evaluating

    with evaluating(session):
        sums, counts = sequence_logps(session.model, batch, session.device, session.liger)
    return sums.double().cpu().numpy(), counts.double().cpu().numpy()


def accumulate_objective(session, batch, objective, scale: float) -> float:
    """Forward and backward of a preference micro-batch: the core's `objective` turns the rows'
    log-probs into the loss; its gradient x `scale` adds to the step's. Returns the loss."""
    from .device import autocast, oom_as_core_error

    with oom_as_core_error():
        with autocast(session.where):
            sums, counts = sequence_logps(session.model, batch, session.device, session.liger)
        loss = objective(OPS, sums, counts).loss
        (loss * scale).backward()
    return float(loss.detach())
