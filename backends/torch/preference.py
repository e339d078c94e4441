"""The torch side of preference tuning: the array namespace the core's losses run in, and the
per-sequence log-probabilities of a batch's completions (summed over their trained tokens)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from localft.data.chat_tokens import IGNORE

LOG_HALF = -0.6931471805599453  # log(1 - exp(x)) switches formula here to stay accurate


class TorchOps:
    log_sigmoid = staticmethod(F.logsigmoid)
    sigmoid = staticmethod(torch.sigmoid)
    where = staticmethod(torch.where)

    @staticmethod
    def log1mexp(x):
        return torch.where(x < LOG_HALF, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))

    @staticmethod
    def clip_min(x, low: float):
        return x.clamp(min=low)

    @staticmethod
    def stop_gradient(x):
        return x.detach()

    @staticmethod
    def asarray(values, like):
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)


OPS = TorchOps()


def sequence_logps(model, input_ids, labels, device: str):
    """(summed log-prob of each row's trained tokens, their count) for right-padded numpy arrays
    (B, T); labels are IGNORE where no log-prob is taken (padding comes after every real token, so
    the causal mask keeps it out). The vocabulary projection runs on the trained positions only."""
    ids = torch.as_tensor(input_ids, device=device)
    targets = torch.as_tensor(labels, device=device)[:, 1:]
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
    keep = targets != IGNORE
    rows = torch.arange(ids.shape[0], device=device)[:, None].expand_as(targets)[keep]
    logits = base.get_output_embeddings()(hidden[:, :-1][keep]).float()
    token_logps = -F.cross_entropy(logits, targets[keep], reduction="none")
    sums = torch.zeros(ids.shape[0], dtype=torch.float32, device=device).index_add(0, rows, token_logps)
    return sums, keep.sum(dim=1).float()


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
    from .session import OutOfMemory, autocast, is_oom

    session.model.eval()
    try:
        with torch.no_grad(), autocast(session.where):
            sums, counts = sequence_logps(session.model, batch.input_ids, batch.labels, session.device)
    except Exception as exc:
        if not is_oom(exc):
            raise
        raise OutOfMemory(str(exc).splitlines()[0]) from None
    finally:
        session.model.train()
    return sums.double().cpu().numpy(), counts.double().cpu().numpy()


def accumulate_objective(session, batch, objective, scale: float) -> float:
    """Forward and backward of a preference micro-batch: the core's `objective` turns the rows'
    log-probs into the loss; its gradient x `scale` adds to the step's. Returns the loss."""
    from .session import OutOfMemory, autocast, is_oom

    try:
        with autocast(session.where):
            sums, counts = sequence_logps(session.model, batch.input_ids, batch.labels, session.device)
        loss = objective(OPS, sums, counts).loss
        (loss * scale).backward()
    except Exception as exc:
        if not is_oom(exc):
            raise
        raise OutOfMemory(str(exc).splitlines()[0]) from None
    return float(loss.detach())
