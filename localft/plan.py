"""The plan of a run: which backend, device, precision and batch sizes it trains with, how long,
and whether it fits. Decided once, by `plan()`, stored in the run as plan.json; every face shows
it and the worker trains on it without deciding anything again."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from localft.config import TrainSpec
from localft.errors import RunError

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Plan:
    backend: str  # "torch" | "mlx"
    device: str  # "cuda" | "mps" | "cpu" (torch) | "gpu" | "cpu" (MLX)
    precision: str  # compute dtype: "fp32" | "bf16" | "fp16"
    quantize: str  # "none" | "4bit" (QLoRA)
    micro_batch: int  # rows per forward pass
    grad_accum: int  # micro-batches per optimizer step
    steps: int  # optimizer steps to train
    max_seq_len: int
    epochs: float | None = None  # passes over the training split those steps make (None: not known)
    train_rows: int | None = None  # training rows (packed) the steps were sized from
    memory_needed: int = 0  # bytes, localft.memory's estimate
    memory_available: int = 0  # bytes of the device's memory free when planned
    memory_where: str = "RAM"  # what `memory_available` counts: "RAM", "GPU memory", "unified memory"
    fits: bool = True
    world_size: int = 1  # processes training together (one per device)
    notes: list[str] = field(default_factory=list)  # one line per choice made for the user, and why

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_plan(run_path: Path, plan: Plan) -> None:
    from localft.runs import atomic_write_json

    atomic_write_json(Path(run_path) / PLAN_FILE, plan.to_dict())


def read_plan(run_path: Path) -> Plan | None:
    """The stored plan of a run, or None for a run made before plans were stored."""
    path = Path(run_path) / PLAN_FILE
    try:
        return Plan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        raise RunError(f"{path} is damaged; start a new run") from None


def plan(spec: TrainSpec) -> Plan:
    """The plan for `spec` on this machine: the backend a spec runs on, its device, precision and
    batch sizes, and the memory verdict (a run that cannot fit has fits=False; `check_plan` raises)."""
    from localft.backends import check_all, pick_backend
    from localft.memory import compute_dtype, estimate_memory
    from localft.models import catalog_entry, resolve_model

    backend = pick_backend(spec)
    device = check_all()[backend].device
    if spec.device != "auto":
        device = spec.device
    precision = compute_dtype(spec, device)
    entry = catalog_entry(spec.model)
    estimate = estimate_memory(spec, entry if entry else resolve_model(spec.model), device)
    available, where = _available_memory(device)
    return Plan(
        backend=backend,
        device=device,
        precision=precision,
        quantize=spec.quantize,
        micro_batch=spec.batch_size,
        grad_accum=spec.grad_accum,
        steps=spec.steps,
        max_seq_len=spec.max_seq_len,
        memory_needed=estimate.total,
        memory_available=available,
        memory_where=where,
        fits=estimate.total <= available,
    )


def _available_memory(device: str) -> tuple[int, str]:
    from localft.hardware import machine_info

    info = machine_info()
    if device == "cuda" and info.gpus:
        return info.gpus[0].vram_bytes, "GPU memory"
    if device in ("mps", "gpu"):
        return info.ram_available_bytes, "unified memory"
    return info.ram_available_bytes, "RAM"
