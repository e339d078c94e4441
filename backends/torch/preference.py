"""The torch side of preference and reinforcement tuning: the array namespace the core's losses
run in, the log-probabilities of a batch's completions (summed per sequence, or per token), and
drafts sampled from the model being trained."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .device import ADAPTER_WEIGHTS

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
    """Start from a finished run's adapter (a preference round continues from SFT's); after full
    fine-tuning, from every weight it saved."""
    from pathlib import Path

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from .modeling import load_full_weights

    device = str(session.params[0].device)
    if session.full:
        load_full_weights(session.model, Path(folder), device)
    else:
        set_peft_model_state_dict(session.model, load_file(Path(folder) / ADAPTER_WEIGHTS, device=device))


def no_grad_logps(session, batch):
    """(log-probs, token counts) of each row as numpy arrays: the reference, or validation."""
    from .device import evaluating

    with evaluating(session):
        sums, counts = sequence_logps(session.model, batch, session.device, session.liger)
    return sums.double().cpu().numpy(), counts.double().cpu().numpy()


def accumulate_objective(session, batch, objective, scale: float, per_token: bool = False) -> float:
    """Forward and backward of a preference or reinforcement micro-batch: the core's `objective`
    turns the rows' log-probs (summed per row with their counts; with `per_token`, per token with
    the mask) into the loss; its gradient x `scale` adds to the step's. Returns the loss."""
    from .device import autocast, oom_as_core_error
    from .loss import token_logps

    with oom_as_core_error():
        with autocast(session.where):
            if per_token:
                logps, counts = token_logps(session.model, batch, session.device)
            else:
                logps, counts = sequence_logps(session.model, batch, session.device, session.liger)
        loss = objective(OPS, logps, counts).loss
        (loss * scale).backward()
    return float(loss.detach())


def keep_reference(session) -> None:
    """The trained weights as they are now (a round's start, before any checkpoint's), kept as the
    reference policy of a KL term: one copy of what trains (the adapter, or every weight)."""
    session.reference = [p.detach().clone() for p in session.params]


def reference_token_logps(session, batch):
    """Per-token log-probs (rows x positions - 1, numpy) of a batch under the kept reference
    weights, without gradients: the trained tensors' storage is swapped for the reference's and
    back, so the optimizer's parameters stay the same objects."""
    from .device import evaluating
    from .loss import token_logps

    current = [p.data for p in session.params]
    try:
        for param, kept in zip(session.params, session.reference, strict=True):
            param.data = kept
        with evaluating(session):
            logps, _ = token_logps(session.model, batch, session.device)
    finally:
        for param, now in zip(session.params, current, strict=True):
            param.data = now
    return logps.double().cpu().numpy()


def draft(session, prompts: list[list[int]], group_size: int, max_new_tokens: int, seed: int,
          stop_ids: list[int], temperature: float = 1.0) -> list[list[list[int]]]:  # fmt: skip
    """`group_size` sampled completions of each prompt (token ids, up to and including the first
    stop token) by the model as it is now, adapter included, with the KV cache; seeded, so the
    same weights and seed draft the same tokens (temperature 0: greedy, one per prompt)."""
    import torch

    from .device import evaluating

    out = []
    greedy = {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if temperature > 0
        else greedy
    )
    with evaluating(session):
        for i, prompt in enumerate(prompts):
            torch.manual_seed(
                seed * 1_000_003 + i
            )  # each prompt its own stream: a group never depends on another
            ids = torch.tensor([prompt], device=session.device)
            drafted = session.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), **sampling,
                num_return_sequences=group_size, max_new_tokens=max_new_tokens,
                use_cache=True, eos_token_id=stop_ids, pad_token_id=stop_ids[0],
            )[:, len(prompt) :].tolist()  # fmt: skip
            out.append([_until_stop(d, set(stop_ids)) for d in drafted])
    return out


def _until_stop(tokens: list[int], stops: set[int]) -> list[int]:
    end = next((i for i, t in enumerate(tokens) if t in stops), None)
    return tokens if end is None else tokens[: end + 1]
