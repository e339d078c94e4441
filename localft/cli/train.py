"""`localft train`, `localft runs ...` and `localft merge`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from localft.cli.run_options import (
    build_train_spec,
    follow_started_run,
    parse_minutes,
    print_plan,
)
from localft.config import TrainSpec, field_help, merge_overrides
from localft.errors import ConfigError, RunError

_H = field_help(TrainSpec)


TIME_HELP = (
    "Train for at most this long (15m, 1h30m): the plan caps the steps at this machine's measured pace."
)
PLAN_HELP = "Import into a scratch folder, print the plan (steps, epochs, memory, time) and stop."


def train_command(
    data: list[Path] = typer.Argument(
        None,
        help="An export archive/folder, or a chat/completions/text JSONL or CSV file; several are merged.",
    ),
    model: str = typer.Option(None, "--model", "-m", help=_H["model"]),
    backend: str = typer.Option(None, "--backend", "-b", help=_H["backend"]),
    epochs: float = typer.Option(None, "--epochs", help=_H["epochs"]),
    steps: int = typer.Option(None, "--steps", help=_H["steps"]),
    time_budget: str = typer.Option(None, "--time", help=TIME_HELP),
    batch_size: int = typer.Option(None, "--batch-size", help=_H["batch_size"]),
    learning_rate: float = typer.Option(None, "--lr", help=_H["learning_rate"]),
    max_seq_len: int = typer.Option(None, "--max-seq-len", help=_H["max_seq_len"]),
    quantize: str = typer.Option(None, "--quantize", help=_H["quantize"]),
    preset: str = typer.Option(
        None, "--preset", help="A TOML file of TrainSpec values, or a built-in preset name."
    ),
    sets: list[str] = typer.Option(
        [], "--set", help="Any TrainSpec field: key=value (lora.rank=16, data.urls=strip)."
    ),
    name: str = typer.Option(None, "--name", help="A name for the run directory."),
    detach: bool = typer.Option(
        False, "--detach", help="Start the worker and return; follow with `localft runs watch`."
    ),
    plan_only: bool = typer.Option(False, "--plan", help=PLAN_HELP),
    method: str = typer.Option(None, "--method", help=_H["method"]),
    from_run: str = typer.Option(
        None,
        "--from",
        help="A finished run to continue from: its adapter, model and settings (a preference round).",
    ),
    pairs: str = typer.Option(None, "--pairs", help=_H["pairs"]),
    beta: float = typer.Option(None, "--beta", help=_H["beta"]),
    nproc: int = typer.Option(None, "--nproc", help=_H["nproc"]),
    hosts: Path = typer.Option(None, "--hosts", help=_H["hosts"]),
) -> None:
    """Import DATA (one export or several, merged) into a new run and train a LoRA adapter on it;
    or, with --from RUN --method dpo, a preference round on that run's feedback or own drafts."""
    from localft.plan.planner import check_plan, plan
    from localft.run import runner

    if hosts:  # checked before a run is made, stored absolute; the plan makes one process per host
        from localft.backends.mlx.hosts import read_hosts

        read_hosts(hosts, nproc)
        hosts = hosts.resolve()
    options = dict(
        model=model, backend=backend, epochs=epochs, steps=steps, time_budget_min=parse_minutes(time_budget),
        batch_size=batch_size, learning_rate=learning_rate, max_seq_len=max_seq_len, quantize=quantize,
        nproc=nproc, hosts=str(hosts) if hosts else None,
    )  # fmt: skip
    preference = dict(method=method, pairs=pairs, beta=beta)
    if method is not None:  # refused here in the spec's own words ("full" is --set weights=full)
        merge_overrides(TrainSpec(), {"method": method})
    if from_run or (method and method != "sft"):
        from localft.cli.preference import preference_round_command

        preference_round_command(from_run, data, {**options, **preference}, sets, name, detach, plan_only)
        return
    if not data:
        raise ConfigError("give the data to train on (an export or a JSONL file), or --from RUN for a round")
    spec = build_train_spec(preset, {**options, **preference}, sets)
    if spec.head:  # the head needs the label set the classify recipe's import records
        raise ConfigError(
            "a classification head trains on labelled texts: localft recipe run classify --from FILE --head"
        )
    source = data if len(data) > 1 else data[0]
    if plan_only:
        p = plan(spec, data=runner.preview_data(spec, source).data)
        print_plan(p)
        check_plan(p)
        return
    run = runner.launch_run(spec, source, name=name)
    follow_started_run(run, f"run {run.id} started: {run.path}", detach)


runs_app = typer.Typer(help="List, watch, stop and resume training runs.", invoke_without_command=True)


@runs_app.callback()
def _runs_default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        runs_list(as_json=False)


@runs_app.command("list")
def runs_list(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Every run with its status, step and losses; a failed or stopped run says how to resume it."""
    from localft.run.folder import list_runs

    runs = list_runs()
    hints = {r.id: resume_line(r) for r in runs}  # sizes only: cheap for many runs
    if as_json:
        rows = [{**r.__dict__, "path": str(r.path), "resume": hints[r.id]} for r in runs]
        print(json.dumps(rows, indent=2))
        return
    if not runs:
        print("no runs yet: `localft train DATA` or `localft demo` starts one")
        return
    print(f"{'id':<40} {'status':<10} {'step':>9}  {'loss':>7} {'val':>7}  model")
    for r in runs:
        loss = f"{r.last_loss:.3f}" if r.last_loss is not None else "-"
        val = f"{r.best_val_loss:.3f}" if r.best_val_loss is not None else "-"
        print(f"{r.id:<40} {r.status:<10} {f'{r.step}/{r.total}':>9}  {loss:>7} {val:>7}  {r.model}")
        if hints[r.id]:
            print(f"  {hints[r.id]}")


def resume_line(summary) -> str | None:
    """`resume: ...` for a failed or stopped run with a checkpoint that verifies, else None."""
    from localft.run.checkpoints import RESUMABLE, find_resume_checkpoint, resume_hint
    from localft.run.folder import RunDir

    if summary.status not in RESUMABLE:
        return None  # spare the check for runs that cannot be resumed anyway
    run = RunDir(summary.path)
    hint = resume_hint(run, summary.status, find_resume_checkpoint(run, hashes=False)[0])
    return f"resume: {hint}" if hint else None


@runs_app.command("show")
def runs_show(run: str = typer.Argument(..., help="Run id (or a unique part of it) or path.")) -> None:
    """A run's status, files, checkpoints (verified) and last events."""
    from localft.plan.planner import read_plan
    from localft.run.checkpoints import find_resume_checkpoint, resume_hint
    from localft.run.folder import open_run, read_events, run_status
    from localft.run.state import describe

    r = open_run(run)
    s = run_status(r)
    print(f"{s.id}  {s.status}  step {s.step}/{s.total}  model {s.model}\n{r.path}")
    if (stored := read_plan(r.path)) is not None:
        print_plan(stored)
    ckpts = r.checkpoints()
    usable, damaged = find_resume_checkpoint(r)
    newest = f", newest {ckpts[-1].name}" if ckpts else ""
    print(f"checkpoints: {len(ckpts)}{newest}   adapter: {'yes' if r.adapter_dir.is_dir() else 'no'}")
    for bad in damaged:
        print(f"damaged checkpoint {bad}")
    if hint := resume_hint(r, s.status, usable):
        print(f"resume: {hint}")
    for event in read_events(r.events_path)[-8:]:
        line = describe(event)
        if line:
            print(f"  {line}")


@runs_app.command("watch")
def runs_watch(run: str = typer.Argument(..., help="Run id or path.")) -> None:
    """Follow a running worker's progress (Ctrl-C detaches; the run goes on)."""
    from localft.cli.progress import watch_run
    from localft.run.folder import open_run

    watch_run(open_run(run), stop_on_interrupt=False)


@runs_app.command("stop")
def runs_stop(
    run: str = typer.Argument(..., help="Run id or path."),
    timeout: float = typer.Option(120, help="Seconds to wait for the checkpoint."),
) -> None:
    """Stop a running worker gracefully; it writes a checkpoint first."""
    from localft.run import runner
    from localft.run.folder import open_run

    r = open_run(run)
    if not runner.is_running(r):
        print(f"run {r.id} is not running")
        return
    if not runner.stop_worker(r, timeout):
        raise RunError(f"run {r.id} did not stop within {timeout:.0f} s; try again or kill {r.worker_pid()}")
    print(f"run {r.id} stopped; `localft runs resume {r.id}` continues it")


@runs_app.command("resume")
def runs_resume(
    run: str = typer.Argument(..., help="Run id or path."),
    detach: bool = typer.Option(False, "--detach", help="Start and return."),
) -> None:
    """Continue a stopped or crashed run from its newest checkpoint that verifies."""
    from localft.cli.progress import watch_run
    from localft.run import runner
    from localft.run.folder import open_run

    r = open_run(run)
    resumed = runner.resume_run(r)
    skipped = (
        f", skipping damaged {', '.join(d.path.name for d in resumed.skipped)}" if resumed.skipped else ""
    )
    where = resumed.checkpoint.name if resumed.checkpoint else "the start"
    print(f"run {r.id} resumed from {where}{skipped}")
    if not detach:
        watch_run(r, start=resumed.start)


def merge_command(
    run: str = typer.Argument(..., help="Run id or path."),
    out: Path = typer.Option(None, "-o", "--out", help="Output folder (default: the run's merged/)."),
) -> None:
    """Merge the run's adapter into its full-precision base and save an HF safetensors folder."""
    from localft.run.export import merge_to
    from localft.run.folder import open_run

    r = open_run(run)
    path = merge_to(r, Path(out) if out else r.merged_dir)
    print(f"merged model: {path}")
