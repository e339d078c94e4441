"""The torch side of a classification head (`--head`): AutoModelForSequenceClassification with LoRA and
the head trainable (peft SEQ_CLS), its cross-entropy over the labels, and the label set on disk so a
merge rebuilds the same head."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from localft.errors import ConfigError, ModelError

from .device import autocast, evaluating, oom_as_core_error
from .modeling import Placement, lora_config, torch_dtype
from .session import TorchSession

HEAD_FILE = "head.json"  # beside the adapter: the label set and the pad token the head pools with


def load_classifier_base(model_dir: Path, labels: list[str], pad_id: int, dtype):
    """The base with a fresh head of len(labels) outputs; decoder models pool their last real token,
    found through the pad token (as transformers does)."""
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)}, dtype=dtype, attn_implementation="sdpa",
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {model_dir} with a classification head: {exc}") from None
    model.config.pad_token_id = pad_id
    model.config.use_cache = False
    return model


def read_head(folder: Path) -> dict | None:
    """The head's label set and pad token saved beside an adapter, or None for a chat adapter."""
    try:
        return json.loads((Path(folder) / HEAD_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def build_classifier_model(model_dir: Path, spec, where: Placement, labels: list[str], pad_id: int):
    import torch
    from peft import get_peft_model

    if spec.quantize == "4bit":
        raise ConfigError("a classification head trains on a full-precision base; use --set quantize=none")
    torch.manual_seed(spec.seed)  # the head's random start is the same for the same seed
    model = load_classifier_base(model_dir, labels, pad_id, torch_dtype(where.dtype_name)).to(where.device)
    config = dataclasses.replace(lora_config(spec.lora, model.config.num_hidden_layers), task_type="SEQ_CLS")
    model = get_peft_model(model, config)  # SEQ_CLS: the head (score/classifier) trains in full
    for p in model.parameters():
        if p.requires_grad:  # adapters and head keep fp32 master weights under autocast
            p.data = p.data.float()
    if spec.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


class ClassifierSession(TorchSession):
    """A TorchSession whose model ends in a classification head; the loss is over labels, not tokens."""

    def __init__(self, request, labels: list[str], pad_id: int) -> None:
        self.labels, self.pad_id = list(labels), pad_id
        super().__init__(request)

    def build_model(self, model_dir: Path, spec):
        self.liger = False  # Liger's kernels serve the token loss; the head's loss is tiny
        return build_classifier_model(model_dir, spec, self.where, self.labels, self.pad_id)

    def loss_name(self) -> str:
        return f"cross-entropy over {len(self.labels)} labels"

    def _logits(self, batch):
        import torch

        ids = torch.as_tensor(batch.input_ids, device=self.device)
        mask = torch.as_tensor(batch.attention_mask, device=self.device)
        return self.model(input_ids=ids, attention_mask=mask).logits.float()

    def accumulate_labels(self, batch, scale: float) -> float:
        """Forward and backward of a micro-batch of texts: summed cross-entropy x `scale`."""
        import torch
        import torch.nn.functional as F

        with oom_as_core_error():
            with autocast(self.where):
                logits = self._logits(batch)
            labels = torch.as_tensor(batch.labels, device=self.device)
            loss_sum = F.cross_entropy(logits, labels, reduction="sum")
            (loss_sum * scale).backward()
        return float(loss_sum.detach())

    def label_logits(self, batch):
        """(B, labels) logits as numpy, without gradients."""
        with evaluating(self):
            logits = self._logits(batch)
        return logits.cpu().numpy()

    def save_adapter(self, folder: Path) -> None:
        super().save_adapter(folder)
        info = {"labels": self.labels, "pad_token_id": self.pad_id}
        (Path(folder) / HEAD_FILE).write_text(json.dumps(info), encoding="utf-8")
