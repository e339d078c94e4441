"""Typed run settings. Every default lives here once; the CLI and TUI show the field docs as help."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from localft.errors import ConfigError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraSpec(_Spec):
    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r: size of the low-rank update.")
    alpha: float = Field(16.0, gt=0, description="LoRA alpha; the update is scaled by alpha / rank.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input during training.")
    targets: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Which linear layers get adapters: 'all-linear' or module names like q_proj, v_proj.",
    )
    dora: bool = Field(False, description="Use DoRA (weight-decomposed LoRA) instead of plain LoRA.")
    num_layers: int | None = Field(
        None, ge=1, description="Adapt only the last N transformer blocks (None = all)."
    )

    @property
    def scale(self) -> float:
        """mlx-lm's `scale` is peft's alpha / rank."""
        return self.alpha / self.rank


class DataSpec(_Spec):
    format: str = Field(
        "auto",
        description="Importer: auto, linkedin, x, mastodon, substack, threads, facebook, bluesky, reddit, text, "
        "jsonl, csv, chat, completions, hf. With several inputs, auto detects each one.",
    )
    text_column: str | None = Field(None, description="Column or key holding the text for JSONL/CSV/HF data.")
    scrub_pii: bool = Field(
        True, description="Replace emails, phone numbers and street addresses with placeholders."
    )
    scrub_handles: bool = Field(False, description="Also replace @handles with a placeholder.")
    urls: Literal["keep", "strip", "placeholder"] = Field("placeholder", description="What to do with links.")
    dedup: bool = Field(True, description="Drop exact and near-duplicate posts.")
    near_dup_threshold: float = Field(
        0.85, gt=0, le=1, description="Similarity above which two posts are duplicates."
    )
    min_chars: int = Field(40, ge=0, description="Drop posts shorter than this many characters.")
    max_chars: int = Field(4000, ge=1, description="Drop posts longer than this many characters.")
    language: str | None = Field(None, description="Keep only posts in this language (ISO code), if set.")
    include_replies: bool = Field(
        False,
        description="Keep replies to others (X, Mastodon, Bluesky, Threads), Reddit comments and "
        "posts on others' Facebook timelines.",
    )
    join_threads: bool = Field(True, description="Join self-reply threads into one post.")
    include_private: bool = Field(False, description="Keep followers-only and direct posts (Mastodon).")
    prompts: Literal["keywords", "model"] = Field(
        "keywords", description="How each post's request is written: local keywords, or a local model."
    )
    prompt_model: str | None = Field(None, description="GGUF used to write requests when prompts = model.")
    system_prompt: str | None = Field(
        None, description="Persona system prompt; None writes one from the platform and author name."
    )
    author: str | None = Field(None, description="The author's name, used in the default system prompt.")
    valid_fraction: float = Field(0.1, ge=0, lt=0.5, description="Share of posts held out for validation.")
    test_fraction: float = Field(0.1, ge=0, lt=0.5, description="Share of posts held out for testing.")
    seed: int = Field(0, description="Seed for the deterministic train/valid/test split.")


class TrainSpec(_Spec):
    model: str = Field("embedded", description="Base model: catalog name, Hugging Face id or local folder.")
    backend: Literal["auto", "torch", "mlx"] = Field("auto", description="Training backend.")
    device: Literal["auto", "cpu", "cuda", "mps", "gpu"] = Field(
        "auto", description="Device the backend uses."
    )
    quantize: Literal["none", "4bit"] = Field(
        "none", description="Train on a 4-bit base (QLoRA). 'none' trains LoRA on full precision weights."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Compute dtype; auto = fp32 on CPU, bf16 on CUDA/MPS/MLX."
    )
    weights: Literal["lora", "full"] = Field(
        "lora",
        description="Which weights train: lora (low-rank adapters) or full (every weight; models that fit).",
    )
    head: bool = Field(
        False,
        description="Train a classification head (AutoModelForSequenceClassification) with LoRA instead of "
        "a chat answer: classify recipe, torch backend, output an HF folder (no GGUF).",
    )
    lora: LoraSpec = Field(default_factory=LoraSpec)
    max_seq_len: int = Field(512, ge=16, le=131072, description="Longest training sequence in tokens.")
    batch_size: int = Field(4, ge=1, description="Examples per micro-batch (rows when packing).")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    learning_rate: float = Field(2e-4, gt=0, lt=1, description="Peak learning rate.")
    schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="Learning-rate schedule.")
    warmup_steps: int = Field(5, ge=0, description="Linear warm-up steps before the schedule.")
    epochs: float = Field(
        2.0, gt=0, le=1000, description="Passes over the training data; the plan turns them into steps."
    )
    steps: int | None = Field(
        None, ge=1, description="Optimizer steps to train; unset: sized from epochs and the data."
    )
    time_budget_min: float | None = Field(
        None, gt=0, description="Minutes of training at most; the plan caps the steps at this machine's pace."
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 = off).")
    packing: bool = Field(True, description="Pack several examples per row, padding-free.")
    train_on: Literal["completions", "all"] = Field(
        "completions", description="Compute loss on assistant turns only, or on every token."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    log_every: int = Field(1, ge=1, description="Emit a Step event every N steps.")
    eval_every: int = Field(25, ge=1, description="Validate every N steps.")
    eval_batches: int = Field(8, ge=1, description="Validation micro-batches per evaluation.")
    save_every: int = Field(50, ge=1, description="Write a checkpoint every N steps.")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without improvement (None = off)."
    )
    auto_batch: bool = Field(
        False, description="On out-of-memory, halve the micro-batch and double accumulation."
    )
    seed: int = Field(0, description="Seed for weights init, data order and dropout.")
    data: DataSpec = Field(default_factory=DataSpec)
    # Preference tuning (localft.train.preference): after SFT, learn from chosen/rejected pairs.
    method: Literal["sft", "dpo", "ipo", "orpo", "simpo", "kto", "grpo"] = Field(
        "sft",
        description="Training objective: sft (learn the data's replies), a preference method on "
        "chosen/rejected pairs: dpo, ipo, orpo, simpo, kto (good/bad marks, unpaired), or grpo "
        "(the model drafts, rewards score the drafts; localft.train.reinforce).",
    )
    beta: float | None = Field(
        None,
        gt=0,
        description="Preference strength beta; unset: the method's usual value (0.1; SimPO 2.0). "
        "grpo: the weight of a KL term to the start adapter (unset: none; 0.04 was TRL's default).",
    )
    pairs: str | None = Field(
        None,
        description="Preference data: a JSONL file, a Hugging Face dataset, 'self' (the run's own drafts "
        "vs the real posts) or 'feedback' (judgements made in the chat; the default).",
    )
    pair_columns: str | None = Field(
        None,
        description="Column mapping for a preference dataset, e.g. prompt=question,chosen=good,rejected=bad.",
    )
    # Reinforcement rounds (method grpo, localft.train.reinforce_loop).
    group_size: int = Field(4, ge=4, description="grpo: drafts per request, scored relative to each other.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "gspo"] = Field(
        "dapo",
        description="grpo: how draft tokens are averaged (dapo: over the step's tokens; grpo: per draft; "
        "dr_grpo: one constant; gspo: one sequence-level ratio per draft).",
    )
    max_draft_tokens: int | None = Field(
        None,
        ge=1,
        description="grpo: the longest draft, in tokens; unset: as long as 9 in 10 of the data's "
        "replies (at least 16, at most half of --max-seq-len).",
    )
    reward_weights: dict[str, float] | None = Field(
        None,
        description="grpo: weight per named reward (style, copied, form, valid_json, json_fields, "
        "label, user); unset: the task's defaults.",
    )
    reward: str | None = Field(
        None, description="grpo: your own reward, path/to/file.py:function(request, draft, data) -> float."
    )
    start_adapter: str | None = Field(
        None, description="An adapter folder to continue from (a finished run's, with --from)."
    )
    nproc: int = Field(
        1, ge=1, le=1024, description="Processes training together, one per device (--nproc; CPU: gloo/ring)."
    )
    hosts: str | None = Field(None, description="MLX: a hosts.json of the machines training together.")
    sharding: Literal["none", "fsdp"] = Field(
        "none", description="torch, several processes: none (DDP, each holds the model) or fsdp (FSDP2)."
    )
    collective_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Several processes: a rank with no progress for this long (waiting on the "
        "others) fails the run in one line instead of hanging.",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _full_is_weights(cls, value):
        if value == "full":  # "full fine-tuning" is which weights train, not a training objective
            raise ValueError(
                "full fine-tuning is --set weights=full (method is the objective: sft, dpo, ...)"
            )
        return value

    @model_validator(mode="after")
    def _full_needs_full_precision(self) -> TrainSpec:
        if self.weights == "full" and self.quantize == "4bit":
            raise ValueError("weights full trains every weight, which a 4-bit base cannot; use quantize none")
        if self.head and (self.weights != "lora" or self.method != "sft"):
            raise ValueError(
                "a classification head trains with LoRA and cross-entropy: use weights lora, method sft"
            )
        return self


QuantName = Literal["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K"]


class ExportSpec(_Spec):
    quants: list[QuantName] = Field(["Q4_K_M"], min_length=1, description="GGUF types to write.")
    verify: bool = Field(True, description="Compare the GGUF against the HF model (top-1, perplexity).")
    ollama: bool = Field(True, description="Write an Ollama Modelfile beside the GGUF.")
    lmstudio: bool = Field(False, description="Also lay the file out as an LM Studio publisher/model folder.")
    adapter_gguf: bool = Field(False, description="Also export the LoRA adapter alone as a GGUF adapter.")
    adapter_only: bool | None = Field(
        None,
        description="Export only the LoRA adapter GGUF, for the Ollama / LM Studio model the run "
        "trained on (the default for such a run).",
    )
    name: str | None = Field(None, description="File name stem; default is the run or folder name.")


class ChatSpec(_Spec):
    """How a chat samples from a GGUF: `localft chat` and the dashboard's Chat screen both start here."""

    system: str | None = Field(
        None, description="System prompt; chatting with a run uses the one it trained with unless given."
    )
    temperature: float = Field(0.7, ge=0, le=5, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(
        0.95, gt=0, le=1, description="Nucleus sampling: keep the top tokens up to this probability."
    )
    max_tokens: int = Field(512, ge=1, le=32768, description="Longest reply in tokens.")


def field_help(model: type[BaseModel]) -> dict[str, str]:
    """Field name → help text, for the CLI and the TUI."""
    return {name: f.description or "" for name, f in model.model_fields.items()}


def describe_error(exc: ValidationError, where: str = "") -> str:
    """One line naming each bad field and why."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "spec"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(parts)


def build_spec(model: type[_Spec], data: dict, where: str = ""):
    """Validate `data` into `model`, turning pydantic's report into a ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, where)) from None


PRESETS_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(path: Path | str) -> TrainSpec:
    """Read a TrainSpec from a TOML preset (top-level TrainSpec keys, [lora] and [data] tables):
    a file, or the name of a built-in preset (`preset_names()`)."""
    if not Path(path).exists() and str(path) in preset_names():
        path = PRESETS_DIR / f"{path}.toml"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"preset {path} not found; built-in presets: {', '.join(preset_names())}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"preset {path} is not valid TOML: {exc}") from None
    return build_spec(TrainSpec, data, where=f"preset {path}")


def merge_overrides(spec: TrainSpec, overrides: dict) -> TrainSpec:
    """A new spec with `overrides` (nested dicts for lora/data) applied and validated."""
    data = spec.model_dump()
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return build_spec(TrainSpec, data)
