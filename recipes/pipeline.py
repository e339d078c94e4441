"""Run a recipe stage by stage: plan → import → train → export → eval. Each finished stage is
recorded in the run, so rerunning the same command picks up at the first unfinished one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_json
from localft.config import ExportSpec, TrainSpec, build_spec, merge_overrides
from localft.errors import DataError, RunError
from localft.events import Emit, EventSink, Log, Stage
from localft.library_logs import quiet_libraries
from localft.paths import runs_dir
from localft.plan.hardware import Machine, this_machine
from localft.recipes.base import Recipe
from localft.run.folder import RECIPE_FILE, RunDir, mark_recipe_process, open_run, recipe_info

STAGES = ("import", "train", "export", "eval")


@dataclass(frozen=True)
class RecipeResult:
    run: RunDir
    gguf: Path | None  # None for a classification head (an HF folder: report["merged"])
    modelfile: Path | None
    report: dict


def recipe_sources(info: dict) -> list[Path]:
    """The inputs a recipe run was started with (runs from before several inputs hold one `source`)."""
    return [Path(s) for s in info.get("sources") or [info["source"]]]


def find_resumable(recipe: str, sources: list[Path], model_arg: str, head: bool = False) -> RunDir | None:
    """The newest run this same command (recipe, inputs, --model, --head) started, if any."""
    root = runs_dir()
    for path in sorted(root.iterdir(), reverse=True):
        run = RunDir(path)
        info = recipe_info(run)
        if not info or info.get("head", False) != head:  # a --head run and a chat run stay apart
            continue
        if (info["recipe"], recipe_sources(info), info["model_arg"]) == (recipe, sources, model_arg):
            return run
    return None


def recipe_spec(
    recipe: Recipe,
    model: str | None,
    backend: str = "auto",
    overrides: dict | None = None,
    machine: Machine | None = None,
    check: bool = True,
) -> TrainSpec:
    """The recipe's settings for this machine, with a model that fits (the first of its ladder),
    then `overrides`: what `recipe run` and the dashboard's form both start from. With `check`,
    refuses a model that cannot fit, with the numbers."""
    from localft.plan.planner import check_plan, plan

    machine = machine or this_machine()
    spec = merge_overrides(TrainSpec(), {**recipe.train_defaults, "backend": backend})
    if plan(spec.model_copy(update={"model": "embedded"}), machine).device == "cpu":
        spec = merge_overrides(spec, recipe.cpu_defaults)
        ladder: tuple[str, ...] = ("embedded",)  # anything larger takes hours per epoch on a CPU
    else:
        ladder = recipe.model_ladder
    spec = merge_overrides(spec, overrides or {})
    if model:
        spec = merge_overrides(spec, {"model": model})
    elif "model" not in (overrides or {}):
        fits = [m for m in ladder if plan(merge_overrides(spec, {"model": m}), machine).fits]
        spec = merge_overrides(spec, {"model": fits[0] if fits else ladder[-1]})
    if check:
        check_plan(plan(spec, machine))
    return spec


def count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def check_enough_data(run: RunDir, recipe: Recipe, source: Path | str) -> int:
    """Refuse a dataset with fewer usable examples than the recipe needs, saying what filtered them."""
    total = sum(count_rows(run.split_path(s)) for s in ("train", "valid", "test"))
    if total >= recipe.min_examples:
        return total
    why = ""
    try:
        report = json.loads((run.data_dir / "report.json").read_text(encoding="utf-8"))
        dropped = report.get("dropped") or report.get("filtered") or {}
        if isinstance(dropped, dict) and dropped:
            why = "; dropped: " + ", ".join(f"{v} {k}" for k, v in dropped.items() if v)
    except (FileNotFoundError, ValueError, AttributeError):
        pass
    raise DataError(
        f"only {total} usable examples in {source} (the {recipe.name} recipe needs at least "
        f"{recipe.min_examples}){why}; export more posts or relax the filters (e.g. --set data.min_chars=20)"
    )


class RecipeRun:
    """One recipe on one run directory. `display` receives every event the stages emit."""

    def __init__(
        self,
        recipe: Recipe,
        run: RunDir,
        sources: list[Path],
        display: Emit | None = None,
        machine: Machine | None = None,
    ):
        self.recipe, self.run, self.sources, self.machine = recipe, run, sources, machine
        self.display = display or (lambda _e: None)

    def emit(self, event) -> None:
        with EventSink(self.run.events_path) as sink:  # reopened per event: the worker appends too
            sink(event)
        self.display(event)

    def stage(self, i: int, name: str) -> None:
        self.emit(Stage("recipe", i, len(STAGES), name))

    def run_stages(self, export_spec: ExportSpec, watch, eval_options: dict | None = None) -> RecipeResult:
        """Every unfinished stage in order; `watch(run, start)` follows training to its Finished.
        `eval_options` overrides the recipe's evaluation size (samples, max_tokens)."""
        mark_recipe_process(self.run)  # followers see the run live while this process drives it
        for i, name in enumerate(STAGES):
            if self.run.stage_done(name):
                continue
            self.stage(i, name)
            getattr(self, f"do_{name}")(export_spec=export_spec, watch=watch, eval_options=eval_options or {})
        self.stage(len(STAGES), "done")
        from localft.eval.inputs import tuned_model

        report = json.loads((self.run.eval_dir / "report.json").read_text(encoding="utf-8"))
        try:
            exported = json.loads((self.run.gguf_dir / "export.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            exported = {}
        modelfile = Path(exported["modelfile"]) if exported.get("modelfile") else None
        tuned = None if self.run.read_spec().head else tuned_model(self.run)
        gguf = tuned and (tuned.adapter or tuned.gguf)  # an adapter-only export: the adapter is what it made
        return RecipeResult(self.run, gguf, modelfile, report)

    def do_import(self, **_) -> None:
        from localft.data.load import describe_inputs

        spec = self.run.read_spec()
        label = describe_inputs(self.sources)
        if self.recipe.prepare_data:
            if len(self.sources) > 1:
                raise DataError(f"the {self.recipe.name} recipe reads one --from; pass a single file")
            self.recipe.prepare_data(self.sources[0], self.run, self.emit)
        else:
            from localft.data.dataset import build_dataset
            from localft.plan.catalog import resolve_model

            build_dataset(
                self.sources, spec.data, self.run.data_dir, tokenizer_dir=resolve_model(spec.model),
                max_seq_len=spec.max_seq_len, train_on=spec.train_on, emit=self.emit,
            )  # fmt: skip
        n = check_enough_data(self.run, self.recipe, label)
        self.plan_training()
        self.run.mark_stage("import", {"source": label, "examples": n})

    def plan_training(self) -> None:
        """Size the run to the imported data (plan.json); its lines go to the run's events."""
        from localft.run.runner import plan_imported

        plan_imported(self.run, self.machine, emit=self.display)

    def do_train(self, watch, **_) -> None:
        from localft.plan.planner import read_plan
        from localft.run import runner

        if read_plan(self.run.path) is None:  # imported before plans were stored
            self.plan_training()
        if not runner.is_running(self.run):
            start = runner.events_size(self.run)
            runner.start_worker(self.run)
        else:
            start = 0  # attach to a worker a previous command left running
        finished = watch(self.run, start)
        if finished.status == "stopped":
            raise KeyboardInterrupt
        if finished.status != "completed":
            raise RunError(f"training failed: {finished.error or 'see ' + str(self.run.log_path)}")
        info = {
            "step": finished.step,
            "best_step": finished.best_step,
            "best_val_loss": finished.best_val_loss,
        }
        self.run.mark_stage("train", info)

    def do_export(self, export_spec: ExportSpec, **_) -> None:
        from localft.run.export import export_run

        quiet_libraries()
        if self.run.read_spec().head:  # the merged HF folder is the head's export
            from localft.run.export import merge_run, no_gguf_for_head

            path = merge_run(self.run, emit=self.emit)
            self.emit(Log(no_gguf_for_head(self.run).split(";")[0] + f": the model is the HF folder {path}"))
            self.run.mark_stage("export", {"files": [], "merged": str(path), "ok": True})
            return
        report = export_run(self.run, export_spec, emit=self.emit)  # marks the stage itself
        if not report.ok:
            self.emit(
                Log(
                    f"the GGUF missed a verification target; see {self.run.gguf_dir / 'export.json'}",
                    "warning",
                )
            )

    def do_eval(self, eval_options: dict, **_) -> None:
        from localft.eval.evaluate import evaluate_run

        quiet_libraries()

        size = {
            "samples": self.recipe.eval_samples,
            "max_tokens": self.recipe.eval_max_tokens,
            **eval_options,
        }
        report = evaluate_run(self.run, task=self.recipe.task, emit=self.emit, **size)
        self.run.mark_stage("eval", {"metrics": report["metrics"]})


def open_recipe_run(
    recipe: Recipe,
    source: Path | list[Path] | None,
    *,
    model: str | None = None,
    backend: str = "auto",
    run_ref: str | None = None,
    fresh: bool = False,
    overrides: dict | None = None,
    display: Emit | None = None,
    machine: Machine | None = None,
) -> RecipeRun:
    """The run to continue (`run_ref`, or the one the same command started), else a new one.
    `source` is the recipe's input, or several inputs merged into one dataset."""
    from localft.data.load import input_paths
    from localft.run.runner import prepare_run

    if run_ref:
        run = open_run(run_ref)
        info = recipe_info(run)
        if not info:
            raise RunError(f"run {run.id} was not started by a recipe; use `localft runs resume {run.id}`")
        if info["recipe"] != recipe.name:
            raise RunError(
                f"run {run.id} is a {info['recipe']} run; continue it with `localft recipe run {info['recipe']} --run {run.id}`"
            )
        return RecipeRun(recipe, run, recipe_sources(info), display)
    sources = [p.expanduser().resolve() for p in input_paths(source)] if source is not None else []
    if not sources:
        raise DataError(f"the {recipe.name} recipe needs --from: {recipe.inputs[0].help}")
    for path in sources:
        if not path.exists():
            raise DataError(f"{path} does not exist; pass the export archive or folder with --from")
    model_arg = model or "auto"
    head = bool((overrides or {}).get("head"))
    run = None if fresh else find_resumable(recipe.name, sources, model_arg, head)
    if run is None:
        machine = machine or this_machine()
        spec = recipe_spec(recipe, model, backend, overrides, machine)
        run = prepare_run(spec, None, name=f"{recipe.name}-{Path(spec.model).name}", machine=machine)
        info = {"recipe": recipe.name, "task": recipe.task, "source": str(sources[0]), "model_arg": model_arg}
        if head:
            info["head"] = True
        if len(sources) > 1:
            info["sources"] = [str(p) for p in sources]
        atomic_write_json(run.path / RECIPE_FILE, info)
    return RecipeRun(recipe, run, sources, display, machine)


def export_spec_for(recipe: Recipe, extra_quants: list[str] | None = None) -> ExportSpec:
    spec = build_spec(ExportSpec, recipe.export_defaults, where=f"recipe {recipe.name}")
    quants = list(dict.fromkeys([*spec.quants, *(q.upper() for q in extra_quants or [])]))
    return build_spec(ExportSpec, {**spec.model_dump(), "quants": quants}, where="--quant")
