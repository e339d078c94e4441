"""`localft recipe list|run` and `localft demo`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from localft.cli.train import PLAN_HELP, TIME_HELP

app = typer.Typer(help="One-command recipes (style-clone, json-extractor).", no_args_is_help=True)

DEMO_EXPORT = "linkedin-export.zip"


@app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """The recipes, their inputs and their defaults."""
    from dataclasses import asdict

    from localft.recipes import all_recipes

    recipes = all_recipes()
    if as_json:
        rows = [{k: v for k, v in asdict(r).items() if k != "prepare_data"} for r in recipes]
        print(json.dumps(rows, indent=2))
        return
    for r in recipes:
        print(f"{r.name:<16} {r.summary}")
        for inp in r.inputs:
            print(f"  {inp.name:<14} {inp.help}{'' if inp.required else ' (optional)'}")
        defaults = ", ".join(f"{k}={v}" for k, v in r.cpu_defaults.items() if k != "lora")
        print(f"  {'CPU defaults':<14} {defaults}")
        print()


def run_recipe_cli(
    name: str,
    source: Path | list[Path] | None,
    *,
    model: str | None = None,
    backend: str = "auto",
    quants: list[str] | None = None,
    run_ref: str | None = None,
    fresh: bool = False,
    overrides: dict | None = None,
    eval_options: dict | None = None,
    plan_only: bool = False,
):
    """Run (or continue) a recipe with the terminal display; returns its RecipeResult. `plan_only`
    prints the plan from a scratch import and stops (no run is made)."""
    from localft.cli.progress import watch_run
    from localft.recipes import get_recipe
    from localft.recipes.display import RecipeDisplay, summary_lines
    from localft.recipes.pipeline import export_spec_for, open_recipe_run

    recipe = get_recipe(name)
    if plan_only:
        return print_recipe_plan(recipe, source, model=model, backend=backend, overrides=overrides)
    display = RecipeDisplay()
    started = time.monotonic()
    rr = open_recipe_run(
        recipe, source, model=model, backend=backend, run_ref=run_ref, fresh=fresh,
        overrides=overrides, display=display,
    )  # fmt: skip
    display.console.print(f"{recipe.name}: run {rr.run.id} ({rr.run.path})")
    done = [s for s in ("import", "train", "export", "eval") if rr.run.stage_done(s)]
    if done:
        display.console.print(f"resuming: {', '.join(done)} already done")
    try:
        result = rr.run_stages(
            export_spec_for(recipe, quants), watch=lambda run, start: watch_run(run, start),
            eval_options=eval_options,
        )  # fmt: skip
    except KeyboardInterrupt:
        display.close()
        display.console.print("stopped. Run the same command again to continue from the last finished stage.")
        raise
    finally:
        display.close()
    print("\n".join(summary_lines(result, time.monotonic() - started)))
    return result


def print_recipe_plan(recipe, source, *, model, backend, overrides):
    """The plan `recipe run` would make, from a scratch import of `source` (nothing is kept)."""
    from localft.cli.run_options import print_plan
    from localft.data.load import input_paths
    from localft.errors import DataError
    from localft.plan.planner import check_plan, plan
    from localft.recipes.pipeline import recipe_spec
    from localft.run.runner import preview_data

    sources = [p.expanduser().resolve() for p in input_paths(source)] if source is not None else []
    if not sources:
        raise DataError(f"the {recipe.name} recipe needs --from: {recipe.inputs[0].help}")
    spec = recipe_spec(recipe, model, backend, overrides, check=False)
    data = preview_data(spec, sources if len(sources) > 1 else sources[0], prepare=recipe.prepare_data).data
    p = plan(spec, data=data)
    print_plan(p)
    return check_plan(p)


@app.command("run")
def run_command(
    name: str = typer.Argument(..., help="Recipe name (see `localft recipe list`)."),
    sources: list[Path] = typer.Option(
        [],
        "--from",
        help="The recipe's input: an export archive, folder or file. Repeat it to merge several exports "
        "(LinkedIn, X, a blog, ...) into one dataset.",
    ),
    model: str = typer.Option(None, "--model", "-m", help="Base model; default: the largest that fits."),
    backend: str = typer.Option("auto", "--backend", "-b", help="Training backend: auto, torch or mlx."),
    quants: list[str] = typer.Option([], "--quant", help="Extra GGUF types beside Q4_K_M, e.g. Q8_0."),
    run_ref: str = typer.Option(None, "--run", help="Continue this run instead of matching --from/--model."),
    fresh: bool = typer.Option(False, "--new", help="Start a new run even if this command ran before."),
    epochs: float = typer.Option(None, "--epochs", help="Override the recipe's passes over the data."),
    steps: int = typer.Option(None, "--steps", help="Train exactly this many steps instead of epochs."),
    time_budget: str = typer.Option(None, "--time", help=TIME_HELP),
    sets: list[str] = typer.Option([], "--set", help="Any TrainSpec field: key=value (lora.rank=16)."),
    plan_only: bool = typer.Option(False, "--plan", help=PLAN_HELP),
    head: bool = typer.Option(
        False,
        "--head",
        help="classify: train a classification head with LoRA (torch; an HF folder, no GGUF).",
    ),
) -> None:
    """Run a recipe end to end: data → train → GGUF → evaluation report. Rerun to resume."""
    from localft.cli.run_options import parse_minutes, parse_sets
    from localft.errors import ConfigError

    if head and name != "classify":
        raise ConfigError(
            f"--head trains a classification head: it belongs to the classify recipe, not {name}"
        )
    given = {
        "epochs": epochs,
        "steps": steps,
        "time_budget_min": parse_minutes(time_budget),
        "head": head or None,
    }
    overrides = {**{k: v for k, v in given.items() if v is not None}, **parse_sets(sets)}
    run_recipe_cli(
        name, sources or None, model=model, backend=backend, quants=quants, run_ref=run_ref, fresh=fresh,
        overrides=overrides, plan_only=plan_only,
    )  # fmt: skip


def demo_export() -> Path:
    """The bundled sample export: examples/ in the source tree, or in the current folder."""
    from localft.errors import DataError

    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "examples" / DEMO_EXPORT, Path.cwd() / "examples" / DEMO_EXPORT):
        if candidate.is_file():
            return candidate
    raise DataError(f"the sample export examples/{DEMO_EXPORT} is missing; run the demo from the repository")


def demo_command(
    source: Path = typer.Option(None, "--from", help="Another export to use instead of the bundled sample."),
    fresh: bool = typer.Option(False, "--new", help="Start over instead of continuing an earlier demo."),
    plan_only: bool = typer.Option(False, "--plan", help=PLAN_HELP),
) -> None:
    """The style-clone recipe on the bundled sample export with the embedded model, then a sample chat."""
    result = run_recipe_cli(
        "style-clone", source or demo_export(), model="embedded", fresh=fresh, plan_only=plan_only
    )
    if plan_only:
        return
    metrics = result.report["metrics"]
    ppl, dist = metrics["perplexity"], metrics["style_distance"]
    print(
        f"\nTest perplexity:  base {ppl['base']:.2f} → tuned {ppl['tuned']:.2f}"
        f"\nStyle distance:   base {dist['base']:.3f} → tuned {dist['tuned']:.3f}"
    )
    prompt, reply = sample_generation(result)
    print(f"\nA sample from {result.gguf.name}:\n> {prompt}\n\n{reply}")


def sample_generation(result, max_tokens: int = 120) -> tuple[str, str]:
    """One fresh reply from the tuned GGUF to the first test prompt."""
    from localft.eval.gguf_model import GgufModel
    from localft.eval.inputs import read_rows, split_prompt, tokenizer_for

    run = result.run
    rows = read_rows(run.split_path("test")) or read_rows(run.split_path("valid"))
    messages = split_prompt(rows[0])[0]
    tokenizer = tokenizer_for(run, run.read_spec().model)
    with GgufModel(result.gguf, tokenizer, n_ctx=512, seed=int(time.time())) as model:
        return messages[-1]["content"], model.generate(messages, max_tokens=max_tokens)
