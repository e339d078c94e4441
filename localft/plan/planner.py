"""The plan of a run: which backend, device, precision and batch sizes it trains with, how long,
and whether it fits. Decided once, by `plan()`, stored in the run as plan.json; every face shows
it and the worker trains on it without deciding anything again."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from localft.config import TrainSpec
from localft.disk import fmt_bytes
from localft.errors import ConfigError, DoesNotFit, RunError
from localft.plan.hardware import Machine, this_machine
from localft.run.pace import Pace, measured_pace

PLAN_FILE = "plan.json"
EVALS_PER_EPOCH = 2  # a run sized from epochs validates at least this often, so early stopping can act
# --time without a measured pace: the loop times this many first steps (the first pays for warm-up,
# within the default 5 warm-up steps, so the new count leaves their learning rates as they were)
# and fixes the step count from them (localft.train.budget).
CALIBRATION_STEPS = 4


@dataclass(frozen=True)
class Plan:
    backend: str  # "torch" | "mlx"
    device: str  # "cuda" | "mps" | "cpu" (torch) | "gpu" | "cpu" (MLX)
    precision: str  # compute dtype: "fp32" | "bf16" | "fp16"
    quantize: str  # "none" | "4bit" (QLoRA)
    micro_batch: int  # rows per forward pass
    grad_accum: int  # micro-batches per optimizer step
    steps: int  # optimizer steps to train (0: not known until the data is imported)
    max_seq_len: int
    epochs: float | None = None  # passes over the training split those steps make (None: not known)
    train_rows: int | None = None  # training rows (packed) the steps were sized from
    memory_needed: int = 0  # bytes, localft.plan.memory's estimate
    memory_available: int = 0  # bytes of the device's memory free when planned
    memory_where: str = "RAM"  # what `memory_available` counts: "RAM", "GPU memory", "unified memory"
    fits: bool = True
    world_size: int = 1  # processes training together (one per device)
    hosts: str | None = None  # a host-list file for a launcher that spans machines (MLX)
    sharding: str = "none"  # "none" (each process holds the whole model: DDP) | "fsdp" (torch FSDP2)
    gradient_checkpointing: bool = False  # recompute activations (asked for, or what makes the run fit)
    notes: list[str] = field(default_factory=list)  # one line per choice made for the user, and why
    model: str = ""  # the spec's model, as the user named it
    train_examples: int | None = None  # training examples the rows were packed from
    eval_every: int | None = None  # steps between validations (None: the spec's)
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    tokens_per_step: int | None = None  # real tokens an optimizer step trains, from the data
    pace: float | None = None  # trained tokens/s measured by an earlier run of this model here
    pace_from: str | None = None  # the run that measured `pace`
    time_budget_s: float | None = None  # the user's limit on training time
    drafting: bool = False  # a grpo round: its steps draft before they train (in its pace, not SFT's)
    verdict: str = ""  # why it does not fit, with a smaller setting to try ("" when it fits)

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    @property
    def seconds(self) -> float | None:
        """Training time at the measured pace (None before a first run of this model here)."""
        if not (self.pace and self.tokens_per_step and self.steps):
            return None
        return self.steps * self.tokens_per_step / self.pace

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_plan(run_path: Path, plan: Plan) -> None:
    from localft.atomic import atomic_write_json

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


@dataclass(frozen=True)
class TrainingData:
    """What the plan needs to know of a training split: the token length of each usable example."""

    lengths: tuple[int, ...]

    @property
    def examples(self) -> int:
        return len(self.lengths)

    def tokens(self, max_seq_len: int) -> int:
        return sum(min(n, max_seq_len) for n in self.lengths)

    def rows(self, max_seq_len: int, packing: bool = True) -> int:
        """Rows an epoch has: examples packed first-fit-decreasing into rows of `max_seq_len`
        tokens (as training packs them), or one row each without packing."""
        if not packing:
            return len(self.lengths)
        from localft.train.rows import first_fit_decreasing

        return len(first_fit_decreasing([min(n, max_seq_len) for n in self.lengths], max_seq_len))


def training_data(split: Path, spec: TrainSpec) -> TrainingData:
    """Token lengths of the usable examples of a JSONL split, tokenized as training tokenizes them
    (the model's chat template, the same mask); examples with nothing to learn from are left out.
    A preference run's split is its pairs: one example each, chosen and rejected together."""
    from localft.data.chat_tokens import read_jsonl, tokenize_row
    from localft.plan.catalog import load_tokenizer, resolve_model

    if spec.method not in ("sft", "grpo"):  # grpo: the run's requests, as SFT counts them
        from localft.train.preference_data import preference_lengths

        return TrainingData(preference_lengths(split, spec))

    rows = list(read_jsonl(split)) if Path(split).is_file() else []
    tokenizer = load_tokenizer(resolve_model(spec.model), chat=any("messages" in r for r in rows))
    examples = [tokenize_row(tokenizer, row, 1 << 30, spec.train_on) for row in rows]
    return TrainingData(
        tuple(len(e.input_ids) for e in examples if e.trained_tokens and len(e.input_ids) > 1)
    )


def plan(
    spec: TrainSpec,
    machine: Machine | None = None,
    data: TrainingData | None = None,
    pace: Pace | None = None,
) -> Plan:
    """The plan for `spec` on `machine` (default: this one) and its training `data` (None: sized
    once the data is imported). Never raises for memory: a run that cannot fit has fits=False and
    a `verdict`; `check_plan` refuses it. `pace` defaults to what an earlier run measured here."""
    from localft.backends import pick_backend
    from localft.plan.memory import check_fits, compute_dtype, estimate_memory, per_process
    from localft.train.world import several_process_blocker

    machine = machine or this_machine()
    backend = pick_backend(spec, machine.backends)
    spec = _with_hosts(spec, backend)
    blocker = several_process_blocker(spec.method, spec.head) if spec.nproc > 1 else None
    if blocker:
        raise ConfigError(blocker)
    device = _device(spec, backend, machine)
    precision = compute_dtype(spec, device)
    available, where = machine.memory_for(device)
    notes_world = world_notes(spec, backend, device, machine)
    if spec.nproc > 1 and device != "cuda" and not spec.hosts:  # the processes share this memory
        available, where = available // spec.nproc, f"{where} (1/{spec.nproc} per process)"

    def estimate_for(s: TrainSpec):
        # localft.plan.memory's device names: MLX on Metal materializes attention scores as MPS does.
        found = estimate_memory(s, _model_source(s.model), "mps" if device == "gpu" else device)
        return per_process(found, s.nproc, s.sharding)

    estimate, notes_memory = estimate_for(spec), []
    if estimate.total > available and not spec.gradient_checkpointing:
        # Recomputing activations costs some speed; refusing a run it would make fit costs the run.
        recomputed = spec.model_copy(update={"gradient_checkpointing": True})
        if estimate_for(recomputed).total <= available:
            notes_memory.append(
                f"gradient checkpointing: on, since without it this run needs ~{fmt_bytes(estimate.total)} "
                f"of {fmt_bytes(available)} {where} free"
            )
            spec, estimate = recomputed, estimate_for(recomputed)
    try:
        check_fits(estimate, available, where)
        verdict = ""
    except DoesNotFit as exc:
        verdict = str(exc)
    if pace is None and (data is not None or spec.steps):  # only a known step count has a duration
        pace = measured_pace(spec.model, backend, device, params=_parameters, drafting=spec.method == "grpo")
    notes = list(machine.notes_for(backend, device)) + notes_world + notes_memory
    base = Plan(
        backend=backend, device=device, precision=precision, quantize=spec.quantize,
        micro_batch=spec.batch_size, grad_accum=spec.grad_accum, steps=spec.steps or 0,
        max_seq_len=spec.max_seq_len, memory_needed=estimate.total, memory_available=available,
        memory_where=where, fits=not verdict, verdict=verdict, model=spec.model,
        early_stopping_patience=spec.early_stopping_patience, eval_every=spec.eval_every,
        pace=pace.tok_per_s if pace else None, pace_from=pace.run_id if pace else None,
        time_budget_s=spec.time_budget_min * 60 if spec.time_budget_min else None,
        drafting=spec.method == "grpo", world_size=spec.nproc, hosts=spec.hosts, sharding=spec.sharding,
        gradient_checkpointing=spec.gradient_checkpointing,
    )  # fmt: skip
    if data is None:
        if not spec.steps:
            notes.append(f"steps: {spec.epochs:g} epochs, counted once the data is imported")
        return replace(base, notes=notes)
    return _size_to_data(spec, base, data, notes)


def _size_to_data(spec: TrainSpec, base: Plan, data: TrainingData, notes: list[str]) -> Plan:
    """Steps from epochs (or the spec's explicit steps), bounded by the time budget at the measured
    pace; validation at least twice an epoch when the steps come from epochs."""
    packed = spec.packing and spec.method == "sft" and not spec.head  # pairs, a head's texts: one a row
    rows = data.rows(spec.max_seq_len, packed)
    if rows == 0:
        raise ConfigError("no training example has a token to learn from; check the data report")
    per_step = base.global_batch
    steps_per_epoch = max(1, math.ceil(rows / per_step))
    tokens_per_step = math.ceil(data.tokens(spec.max_seq_len) / rows * per_step)
    if spec.method == "grpo":  # G drafts of each request, each with its prompt, as the round counts them
        tokens_per_step *= spec.group_size
    eval_every = spec.eval_every
    if spec.steps:
        steps = spec.steps
        notes.append(f"steps: {steps}, as asked")
    else:
        steps = max(1, math.ceil(spec.epochs * rows / per_step))
        eval_every = max(1, min(spec.eval_every, steps_per_epoch // EVALS_PER_EPOCH))
        notes.append(f"steps: {spec.epochs:g} epochs of {rows} rows at {per_step} rows a step")
    if base.time_budget_s:
        if base.pace:
            fit_in_time = max(1, int(base.time_budget_s * base.pace / tokens_per_step))
            if fit_in_time < steps:
                steps = fit_in_time
                notes.append(
                    f"time: {fmt_duration(base.time_budget_s)} at {base.pace:.0f} tokens/s "
                    f"(measured in {base.pace_from}) caps training at {steps} steps"
                )
        elif steps > CALIBRATION_STEPS:
            notes.append(
                f"time: no pace measured on {base.backend}/{base.device} here yet: the first {CALIBRATION_STEPS} "
                f"steps measure it, then the {fmt_duration(base.time_budget_s)} budget fixes the step count "
                f"(at most {steps})"
            )
    return replace(
        base, steps=steps, epochs=round(steps * per_step / rows, 2), train_rows=rows,
        train_examples=data.examples, eval_every=min(eval_every, steps), tokens_per_step=tokens_per_step,
        notes=notes,
    )  # fmt: skip


def _with_hosts(spec: TrainSpec, backend: str) -> TrainSpec:
    """A hosts file decides the process count (one per host); only MLX's launcher spans machines."""
    if not spec.hosts:
        return spec
    if backend != "mlx":
        raise ConfigError(
            f"--hosts is for the mlx backend (mlx.launch over several Macs); {backend} trains on one "
            "machine: use --nproc N"
        )
    from localft.backends.mlx.hosts import read_hosts

    hosts = read_hosts(Path(spec.hosts), spec.nproc if spec.nproc > 1 else None).hosts
    return spec.model_copy(update={"nproc": len(hosts)})


def world_notes(spec: TrainSpec, backend: str, device: str, machine: Machine) -> list[str]:
    """What several processes mean for this run (a note for the plan), or a refusal: more
    processes than GPUs, or sharding a backend does not have."""
    if spec.sharding == "fsdp" and backend != "torch":
        raise ConfigError(f"sharding fsdp is torch's (FSDP2); {backend} trains with sharding=none")
    if spec.nproc == 1:
        return ["processes: 1, sharded with FSDP2"] if spec.sharding == "fsdp" else []
    found = machine.backends[backend].devices
    if device == "cuda" and spec.nproc > found:  # a CPU or one Mac's GPU may run several, for testing
        raise ConfigError(
            f"--nproc {spec.nproc} asks for more processes than the {found} {device} device(s) here"
        )
    how = "FSDP2, each process holds 1/N of the weights" if spec.sharding == "fsdp" else "data-parallel"
    global_batch = spec.batch_size * spec.grad_accum * spec.nproc
    return [f"processes: {spec.nproc} ({how}), {global_batch} rows a step in all"]


def _device(spec: TrainSpec, backend: str, machine: Machine) -> str:
    """The backend's own device unless the spec names one it can use."""
    found = machine.backends[backend].device
    if spec.device == "auto" or spec.device == found:
        return found
    if spec.device == "cpu":
        return "cpu"
    raise ConfigError(
        f"device {spec.device!r} asked for, but {backend} can use only {found} here "
        f"({machine.backends[backend].reason}); use --set device=auto"
    )


def _model_source(name: str):
    """What the memory estimate reads: a local folder's config, else the catalog, else the hub."""
    from localft.plan.catalog import catalog_entry, check_model_folder, resolve_model

    local = Path(name).expanduser()
    if local.exists():
        return check_model_folder(local)
    return catalog_entry(name) or resolve_model(name)


def _parameters(name: str) -> int | None:
    """A model's parameter count from a local folder's config or the catalog (never a download),
    None when neither has it."""
    from localft.plan.catalog import catalog_entry
    from localft.plan.memory import model_shape

    local = Path(name).expanduser()
    try:
        source = local if (local / "config.json").is_file() else catalog_entry(name)
        return model_shape(source).params if source is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_plan(p: Plan) -> Plan:
    """`p`, or DoesNotFit with the numbers and a smaller setting to try."""
    if not p.fits:
        raise DoesNotFit(p.verdict)
    return p


def apply_plan(spec: TrainSpec, p: Plan) -> TrainSpec:
    """The spec a run records: the planned backend, device, precision, batches, steps and schedule,
    so whatever reads spec.json trains exactly what the plan shows."""
    update = dict(
        backend=p.backend, device=p.device, precision=p.precision, batch_size=p.micro_batch,
        grad_accum=p.grad_accum, nproc=p.world_size,
        gradient_checkpointing=p.gradient_checkpointing or spec.gradient_checkpointing,
    )  # fmt: skip
    if p.steps:
        update |= {"steps": p.steps, "eval_every": p.eval_every or spec.eval_every}
    return spec.model_copy(update=update)


def plan_run(run, machine: Machine | None = None, spec: TrainSpec | None = None) -> Plan:
    """Plan a run on its imported training split and record it: plan.json, and the planned values
    in spec.json. Refuses (DoesNotFit) a run that cannot fit."""
    from localft.data.pairs import pairs_path

    spec = spec or run.read_spec()
    split = run.split_path("train") if spec.method in ("sft", "grpo") else pairs_path(run, "train")
    p = check_plan(plan(spec, machine, training_data(split, spec)))
    write_plan(run.path, p)
    run.write_spec(apply_plan(spec, p))
    return p


def describe(p: Plan) -> list[str]:
    """The plan in a few lines, as every face shows it (CLI, recipes, dashboard)."""
    rows = f"{p.micro_batch}×{p.grad_accum}" if p.grad_accum > 1 else str(p.micro_batch)
    if p.world_size > 1:  # the batch flags are per process; the step trains all of theirs
        rows += f"×{p.world_size} processes"
    head = (
        f"{p.model} on {p.backend}/{p.device} ({p.precision}{', 4-bit base' if p.quantize == '4bit' else ''})"
    )
    if p.steps and p.train_rows:
        size = (
            f"{p.steps} steps of {rows} rows × {p.max_seq_len} tokens = {p.epochs:g} epochs "
            f"of {p.train_examples} examples ({p.train_rows} rows)"
        )
    elif p.steps:
        size = f"{p.steps} steps of {rows} rows × {p.max_seq_len} tokens"
    else:
        size = f"rows of {rows} × {p.max_seq_len} tokens; steps counted once the data is imported"
    lines = [f"{head}: {size}"]
    if p.early_stopping_patience and p.eval_every:
        lines.append(
            f"validation every {p.eval_every} steps; early stopping after "
            f"{p.early_stopping_patience} without improvement"
        )
    elif p.eval_every:
        lines.append(f"validation every {p.eval_every} steps; no early stopping")
    fit = "fits" if p.fits else "does NOT fit"
    needed, free = fmt_bytes(p.memory_needed), fmt_bytes(p.memory_available)
    lines.append(f"memory: {fit}, needs ~{needed} of {free} {p.memory_where} free")
    seconds = p.seconds
    if seconds is not None:
        lines.append(f"time: ~{fmt_duration(seconds)} at {p.pace:.0f} tokens/s (measured in {p.pace_from})")
    elif p.steps and not any(n.startswith("time:") for n in p.notes):
        what = "grpo round (its pace includes drafting)" if p.drafting else "run"
        lines.append(f"time: known after a first {what} of {p.model} on {p.backend}/{p.device} here")
    lines += [n for n in p.notes if not n.startswith("steps:")]
    return lines


def fmt_duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
