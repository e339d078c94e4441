"""The MLX backend: LoRA/DoRA/QLoRA training on mlx-lm and fusing into an HF folder.
mlx is imported inside the methods, so listing backends never loads it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from localft.backends import Availability
from localft.config import TrainSpec
from localft.errors import BackendUnavailable, ConfigError, DoesNotFit
from localft.events import Emit, Log, RunStarted
from localft.runs import RunDir


class MlxBackend:
    name: ClassVar[str] = "mlx"

    def check(self) -> Availability:
        """Whether mlx and mlx-lm import here, and whether MLX sees a Metal GPU (cheap: no model)."""
        import importlib.util

        from localft.hardware import is_apple_silicon

        if importlib.util.find_spec("mlx") is None or importlib.util.find_spec("mlx_lm") is None:
            hint = "pip install 'localft[mlx]'" + ("" if is_apple_silicon() else " (mlx[cpu] on Linux)")
            return Availability(False, "", f"mlx or mlx-lm missing: {hint}")
        try:
            import mlx.core as mx
        except (ImportError, OSError) as exc:
            return Availability(False, "", f"mlx does not load here: {exc}")
        if mx.metal.is_available():
            return Availability(True, "gpu", "MLX on Apple silicon (Metal)")
        return Availability(True, "cpu", "MLX on CPU (mlx[cpu]; slow, for small models)")

    def train(self, spec: TrainSpec, run: RunDir, emit: Emit, stop: Callable[[], bool]) -> None:
        trainer = build_trainer(spec, run, emit, self.check())
        run_with_memory_guard(trainer.run_steps, stop)

    def merge(self, run: RunDir, out: Path) -> Path:
        from localft.backends.mlx.fuse import fuse_run

        return fuse_run(run, Path(out))


def select_device(spec: TrainSpec, avail: Availability) -> str:
    """'gpu' (Metal) or 'cpu', and make it MLX's default device."""
    import mlx.core as mx

    if not avail.ok:
        raise BackendUnavailable(f"MLX cannot run here: {avail.reason}")
    if spec.device in ("cuda", "mps"):
        raise ConfigError(f"device {spec.device!r} is not an MLX device; use --device auto, gpu or cpu")
    gpu = mx.metal.is_available()
    if spec.device == "gpu" and not gpu:
        raise BackendUnavailable("MLX has no GPU on this machine (Metal is Apple-only); use --device cpu")
    device = "cpu" if spec.device == "cpu" or not gpu else "gpu"
    mx.set_default_device(mx.cpu if device == "cpu" else mx.gpu)
    return device


def build_trainer(spec: TrainSpec, run: RunDir, emit: Emit, avail: Availability):
    """Load the model and data, add adapters, and restore the latest checkpoint if there is one."""
    import mlx.core as mx
    from transformers import AutoTokenizer

    from localft.backends.mlx.batches import tokenize_split
    from localft.backends.mlx.loop import MlxTrainer
    from localft.backends.mlx.modeling import (
        adapter_config,
        add_adapters,
        compute_dtype,
        enable_grad_checkpoint,
        load_base,
        packing_supported,
        set_memory_limit,
        trainable_count,
    )
    from localft.checkpoints import resume_checkpoint
    from localft.hardware import fmt_bytes
    from localft.models import catalog_entry, resolve_model

    device = select_device(spec, avail)
    limit = set_memory_limit()
    check_memory(spec, device, limit)
    model_dir = resolve_model(spec.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train_ex = tokenize_split(tokenizer, run.split_path("train"), spec.max_seq_len, spec.train_on)
    valid_ex = tokenize_split(tokenizer, run.split_path("valid"), spec.max_seq_len, spec.train_on)
    # An mlx-community 4-bit catalog id resolves to the full-precision weights (the merge source);
    # naming it asks for QLoRA, so the base is quantized here the same way.
    entry = catalog_entry(spec.model)
    quantize = spec.quantize == "4bit" or (entry is not None and spec.model == entry.mlx_id)
    model, config = load_base(model_dir, compute_dtype(spec, device), quantize=quantize)
    mx.random.seed(spec.seed)  # LoRA initialisation
    cfg = adapter_config(model, spec.lora)
    add_adapters(model, cfg)
    if spec.gradient_checkpointing:
        enable_grad_checkpoint(model)
    packed, why_not = packing_supported(model, config) if spec.packing else (False, None)
    if why_not:
        emit(Log(f"packing is off: {why_not}", "warning"))
    if spec.auto_batch:
        emit(
            Log("auto_batch is not supported by the MLX backend yet; the batch size stays as set", "warning")
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainer = MlxTrainer(spec, run, model, cfg, train_ex, valid_ex, packed, pad_id, emit, device)
    resumed = 0
    if (ckpt := resume_checkpoint(run, emit)) is not None:
        trainer.restore(ckpt)
        resumed = trainer.state.step
    quant = "4-bit base (QLoRA)" if "quantization" in config else "full-precision base"
    emit(Log(f"MLX on {device}: {trainable_count(model):,} trainable parameters, {quant}, "
             f"{len(train_ex)} train / {len(valid_ex)} valid examples, memory limit {fmt_bytes(limit)}"))  # fmt: skip
    emit(RunStarted(run.id, "mlx", spec.model, device, spec.steps, resumed_from=resumed))
    return trainer


def check_memory(spec: TrainSpec, device: str, limit: int) -> None:
    """Refuse a run that cannot fit, with numbers, before any weights are loaded (a catalog model
    is estimated from the catalog, before it is downloaded)."""
    from localft.hardware import machine_info
    from localft.memory import check_fits, estimate_memory
    from localft.models import catalog_entry, resolve_model

    local = Path(spec.model).expanduser()
    entry = None if local.exists() else catalog_entry(spec.model)
    source = entry or resolve_model(spec.model)
    # localft.memory's device names: MLX on Metal materializes attention scores like MPS does.
    estimate = estimate_memory(spec, source, device="cpu" if device == "cpu" else "mps")
    available = (
        min(limit, machine_info().ram_available_bytes) if limit > 0 else machine_info().ram_available_bytes
    )
    check_fits(estimate, available, where="memory" if device == "cpu" else "unified memory")


def run_with_memory_guard(fn, *args) -> None:
    """MLX raises a RuntimeError when an allocation passes its memory limit; say so plainly."""
    try:
        fn(*args)
    except RuntimeError as exc:
        text = str(exc)
        if "memory" not in text.lower() and "alloc" not in text.lower():
            raise
        raise DoesNotFit(
            f"MLX ran out of memory ({text.splitlines()[0]}); lower --batch-size or --max-seq-len, "
            "or use --quantize 4 or gradient checkpointing"
        ) from None
