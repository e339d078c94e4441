"""What the New run screen shows and starts, kept out of the screen: the form's fields, the data
preview, the plan (the same `localft.plan.planner.plan` every face calls) and starting the run in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from localft.config import LoraSpec, TrainSpec, field_help, merge_overrides
from localft.errors import LocalftError
from localft.events import Emit
from localft.plan.hardware import Machine
from localft.run.folder import RunDir

TRAIN_HELP, LORA_HELP = field_help(TrainSpec), field_help(LoraSpec)
# Form field id -> (path in TrainSpec, label, help text). Only the main knobs; presets cover the rest.
FIELDS = {
    "epochs": (("epochs",), "epochs", TRAIN_HELP["epochs"]),
    "time_budget_min": (("time_budget_min",), "time budget (min)", TRAIN_HELP["time_budget_min"]),
    "steps": (("steps",), "steps", TRAIN_HELP["steps"]),
    "learning_rate": (("learning_rate",), "learning_rate", TRAIN_HELP["learning_rate"]),
    "batch_size": (("batch_size",), "batch_size", TRAIN_HELP["batch_size"]),
    "max_seq_len": (("max_seq_len",), "max_seq_len", TRAIN_HELP["max_seq_len"]),
    "rank": (("lora", "rank"), "lora.rank", LORA_HELP["rank"]),
    "alpha": (("lora", "alpha"), "lora.alpha", LORA_HELP["alpha"]),
}


BLANK = {"steps": "from epochs", "time_budget_min": "no limit"}  # what an empty optional field means


def field_value(spec: TrainSpec, path: tuple[str, ...]) -> str:
    """A spec's value as the form shows it ("" for unset)."""
    value = spec
    for part in path:
        value = getattr(value, part)
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def form_values(spec: TrainSpec) -> dict[str, str]:
    return {name: field_value(spec, path) for name, (path, _, _) in FIELDS.items()}


def form_overrides(values: dict[str, str]) -> dict:
    """Field values as TrainSpec overrides (nested for lora); a blank field is unset."""
    data: dict = {}
    for name, (path, _, _) in FIELDS.items():
        value = values[name].strip() or None
        if len(path) == 2:
            data.setdefault(path[0], {})[path[1]] = value
        else:
            data[path[0]] = value
    return data


def recipe_choices() -> list[tuple[str, str]]:
    from localft.recipes import all_recipes

    return [("Dataset only (plain LoRA run)", "none")] + [(r.name, r.name) for r in all_recipes()]


def base_spec(recipe: str, model: str, backend: str, machine: Machine) -> TrainSpec:
    """What the form starts from: the recipe's settings for this machine (what `localft recipe run`
    uses), or TrainSpec's defaults for a plain run."""
    if recipe == "none":
        return merge_overrides(TrainSpec(), {"model": model, "backend": backend})
    from localft.recipes import get_recipe
    from localft.recipes.pipeline import recipe_spec

    return recipe_spec(get_recipe(recipe), model, backend, machine=machine, check=False)


def sample_export() -> Path | None:
    """The bundled sample export `localft demo` uses, when this install has it."""
    from localft.recipes.commands import demo_export

    try:
        return demo_export()
    except LocalftError:
        return None


def model_on_disk(model: str) -> bool:
    """Whether the model's files are here already (the form never starts a download)."""
    from localft.plan.catalog import EMBEDDED, catalog_entry
    from localft.plan.local_models import is_local_id, local_model_prepared

    if is_local_id(model):
        return local_model_prepared(model)
    if model == EMBEDDED or Path(model).expanduser().exists():
        return True
    entry = catalog_entry(model)
    repo = entry.hf_id if entry else model
    if entry and entry.name == EMBEDDED:
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo, "config.json"), str)
    except Exception:  # not a hub id, or no hub library: nothing cached
        return False


@dataclass(frozen=True)
class DataPreview:
    text: str  # the data report as `localft data` prints it
    data: object | None  # localft.plan.planner.TrainingData, or None where the tokenizer is not here yet


def preview(source: Path, spec: TrainSpec, recipe: str) -> DataPreview:
    """The data report and the training data a plan is sized from, from a scratch import."""
    from localft.data.report import format_report
    from localft.run.runner import preview_data

    prepare = None
    if recipe != "none":
        from localft.recipes import get_recipe

        prepare = get_recipe(recipe).prepare_data
    if not model_on_disk(spec.model):
        return DataPreview(plain_report(source, spec), None)
    found = preview_data(spec, source, prepare=prepare)
    if found.report is None:
        text = f"The {recipe} recipe reads this file itself: {found.data.examples} training examples."
    else:
        text = format_report(found.report)
    return DataPreview(text, found.data)


def plain_report(source: Path, spec: TrainSpec) -> str:
    """The data report without token statistics (the model is not downloaded yet)."""
    import tempfile

    from localft.data.dataset import build_dataset
    from localft.data.report import format_report

    with tempfile.TemporaryDirectory(prefix="localft-preview-") as tmp:
        return format_report(build_dataset(source, spec.data, Path(tmp)))


def start_run(
    spec: TrainSpec, source: Path, recipe: str, machine: Machine, emit: Emit, overrides: dict
) -> RunDir:
    """Create the run here, in this process, on the plan the form showed: import, plan, then the
    worker (a plain run) or a recipe process that continues this run by id (it must outlive the
    dashboard: it exports and evaluates after training) and plans nothing."""
    if recipe == "none":
        from localft.run.runner import launch_run

        return launch_run(spec, source, emit=emit, machine=machine)
    from localft.recipes import get_recipe
    from localft.recipes.pipeline import open_recipe_run
    from localft.run.folder import discard_unstarted

    rr = open_recipe_run(
        get_recipe(recipe), source, model=spec.model, backend=spec.backend, fresh=True,
        overrides=overrides, display=emit, machine=machine,
    )  # fmt: skip
    try:
        rr.do_import()
        continue_recipe(recipe, rr.run)
    except BaseException:
        discard_unstarted(rr.run)
        raise
    return rr.run


def continue_recipe(recipe: str, run: RunDir) -> int:
    """Start `localft recipe run RECIPE --run ID` detached: training, export and evaluation of a run
    that exists and is planned already. Its output goes to the run's recipe.log."""
    from localft.run.folder import mark_recipe_process
    from localft.run.processes import detached

    cmd = [sys.executable, "-c", "import sys; from localft.cli.main import main; main(sys.argv[1:])",
           "recipe", "run", recipe, "--run", run.id]  # fmt: skip
    with open(run.path / "recipe.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=os.environ.copy(), **detached())  # fmt: skip
    mark_recipe_process(run, proc.pid)  # live from now on, before the child has started up
    return proc.pid


def local_choices() -> list[tuple[str, str]]:
    """The form's entries for the GGUF models in Ollama's store and LM Studio's folder (a folder
    that cannot be read lists nothing; a file training cannot read is refused when the run starts)."""
    from localft.plan.local_models import local_models

    try:
        found = local_models()
    except (LocalftError, OSError):
        return []
    return [(f"{m.id} ({m.info.size} {m.info.quantization})", m.id) for m in found]
