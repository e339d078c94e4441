"""New run: a recipe or a dataset, a model with its fit on this machine, backend and hyperparameters."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from localft.config import LoraSpec, TrainSpec, field_help
from localft.errors import LocalftError
from localft.models import CATALOG
from localft.tui.messages import (
    DataReportReady,
    FitEstimated,
    MachineReport,
    RecipePlanned,
    RunEvents,
    RunLaunched,
    WorkFailed,
)
from localft.tui.run_setup import (
    default_value,
    launch_recipe,
    own_importer,
    preview_report,
    recipe_choices,
    sample_export,
    time_estimate,
)
from localft.tui.workers import ReportsWorkerErrors, background

# Form field id -> (path in TrainSpec, help text). Only the main knobs; presets cover the rest.
TRAIN_HELP, LORA_HELP = field_help(TrainSpec), field_help(LoraSpec)
FIELDS = {
    "steps": (("steps",), TRAIN_HELP["steps"]),
    "learning_rate": (("learning_rate",), TRAIN_HELP["learning_rate"]),
    "batch_size": (("batch_size",), TRAIN_HELP["batch_size"]),
    "max_seq_len": (("max_seq_len",), TRAIN_HELP["max_seq_len"]),
    "rank": (("lora", "rank"), LORA_HELP["rank"]),
    "alpha": (("lora", "alpha"), LORA_HELP["alpha"]),
}


class NewRunScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("ctrl+o", "demo", "Sample data", priority=True),
        Binding("ctrl+f", "browse", "Browse", priority=True),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="new-run"):
            with VerticalScroll(id="form"):
                yield Label("Recipe", classes="label")
                yield Select(recipe_choices(), value="none", allow_blank=False, id="recipe", compact=True)
                yield Label("Data: an export archive, folder or dataset file", classes="label")
                with Horizontal(classes="field-row"):
                    yield Input(placeholder="path to your export or dataset", id="source", compact=True)
                    yield Button("Browse", id="browse", compact=True)
                    yield Button("Sample", id="sample", compact=True)
                yield Static("", id="source-error", classes="error")
                yield Label("Model", classes="label")
                models = [(f"{m.name} ({m.params_m:.0f}M)", m.name) for m in CATALOG]
                yield Select(models, value="embedded", allow_blank=False, id="model", compact=True)
                yield Input(placeholder="or a local folder / hub id", id="model-path", compact=True)
                yield Static("", id="fit")
                yield Label("Backend", classes="label")
                yield Select([("auto", "auto"), ("torch", "torch"), ("mlx", "mlx")], value="auto",
                             allow_blank=False, id="backend", compact=True)  # fmt: skip
                yield Static("", id="backend-info", classes="help")
                names = list(FIELDS)
                for pair in (names[0:2], names[2:4], names[4:6]):
                    with Horizontal(classes="field-row"):
                        for name in pair:
                            path, help_text = FIELDS[name]
                            with Vertical(classes="field"):
                                yield Label(".".join(path), classes="label")
                                yield Input(
                                    default_value(path), id=f"f-{name}", tooltip=help_text, compact=True
                                )
                                yield Static(help_text, classes="help")
                                yield Static("", id=f"err-{name}", classes="error")
            with VerticalScroll(id="report-box"):
                yield Static("Data report", classes="title")
                yield Static("Choose a file to see what will be trained on.", id="data-report")
        with Horizontal(id="start-row"):
            yield Static("", id="form-error", classes="error")
            yield Button("Start (ctrl+s)", id="start", variant="success", disabled=True, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.spec: TrainSpec | None = None
        self.report_for: str = ""
        self.starting = False
        self.machine: dict | None = None
        self.baseline = {name: default_value(path) for name, (path, _) in FIELDS.items()}
        self.app.load_machine(self)
        self.validate_form()

    # -- form state -------------------------------------------------------------------------
    def overrides(self) -> dict:
        data: dict = {"model": self.model_name(), "backend": self.query_one("#backend", Select).value}
        for name, (path, _) in FIELDS.items():
            value = self.query_one(f"#f-{name}", Input).value.strip()
            if len(path) == 2:
                data.setdefault(path[0], {})[path[1]] = value
            else:
                data[path[0]] = value
        return data

    def model_name(self) -> str:
        return self.query_one("#model-path", Input).value.strip() or str(
            self.query_one("#model", Select).value
        )

    def changed_fields(self) -> dict[str, str]:
        """Dotted field -> value for the knobs the user moved off TrainSpec's defaults."""
        changed = {}
        for name, (path, _) in FIELDS.items():
            value = self.query_one(f"#f-{name}", Input).value.strip()
            if value != self.baseline[name]:
                changed[".".join(path)] = value
        return changed

    def validate_form(self) -> None:
        """Validate through TrainSpec itself; each bad field shows pydantic's message under it."""
        errors: dict[str, str] = {}
        try:
            self.spec = TrainSpec.model_validate(self.overrides())
        except ValidationError as exc:
            self.spec = None
            for err in exc.errors():
                loc = tuple(str(x) for x in err["loc"])
                name = next((n for n, (p, _) in FIELDS.items() if p == loc[: len(p)]), None)
                errors[name or ".".join(loc)] = err["msg"]
        for name in FIELDS:
            self.query_one(f"#err-{name}", Static).update(errors.pop(name, ""))
        source = self.query_one("#source", Input).value.strip()
        source_error = ""
        if source and not Path(source).expanduser().exists():
            source_error = f"{source} does not exist"
        self.query_one("#source-error", Static).update(source_error)
        problems = list(errors.values()) + ([source_error] if source_error else [])
        if not source:
            problems.append("choose your data first")
        self.query_one("#form-error", Static).update("; ".join(problems[:2]))
        self.query_one("#start", Button).disabled = bool(problems) or self.spec is None or self.starting
        if self.spec is not None and self.machine is not None:
            self.estimate_fit(self.spec, self.training_device())

    @on(Input.Changed)
    @on(Select.Changed)
    def form_changed(self, event) -> None:
        self.validate_form()
        if getattr(event, "input", None) is not None and event.input.id == "source":
            self.load_report()
        if getattr(event, "select", None) is not None and event.select.id == "backend":
            self.show_backends()
        if getattr(event, "select", None) is not None and event.select.id == "recipe":
            self.load_report()
            self.plan_recipe(
                str(event.value), self.model_name(), str(self.query_one("#backend", Select).value)
            )

    def on_machine_report(self, message: MachineReport) -> None:
        self.machine = message.report
        self.show_backends()
        self.validate_form()

    def show_backends(self) -> None:
        if self.machine is None:
            return
        lines = [
            f"{'ok' if a['ok'] else 'no'} {n}: {a['reason']}" for n, a in self.machine["backends"].items()
        ]
        if self.query_one("#backend", Select).value == "auto":
            lines.insert(0, f"auto picks {self.auto_backend()}")
        self.query_one("#backend-info", Static).update(escape("\n".join(lines)), layout=True)

    @background("recipe")
    def plan_recipe(self, name: str, model: str, backend: str) -> None:
        """The recipe's own settings for this machine fill the form (what `localft recipe run` uses)."""
        if name == "none":
            self.post_message(RecipePlanned(name, {n: default_value(p) for n, (p, _) in FIELDS.items()}))
            return
        from localft.recipes import get_recipe
        from localft.recipes.pipeline import plan_spec

        try:
            spec = plan_spec(get_recipe(name), model, backend)
        except LocalftError as exc:
            self.post_message(RecipePlanned(name, {}, error=str(exc)))
            return
        values = {}
        for field, (path, _) in FIELDS.items():
            value = spec
            for part in path:
                value = getattr(value, part)
            values[field] = str(value)
        self.post_message(RecipePlanned(name, values))

    def on_recipe_planned(self, message: RecipePlanned) -> None:
        if message.error:
            self.post_message(WorkFailed(message.error))
            return
        self.baseline = dict(message.values)
        for name, value in message.values.items():
            self.query_one(f"#f-{name}", Input).value = value

    # -- fit indicator ----------------------------------------------------------------------
    def auto_backend(self) -> str:
        """What `pick_backend` chooses for "auto": MLX on Apple silicon, else torch, else what runs."""
        m, backends = self.machine["machine"], self.machine["backends"]
        order = ["mlx", "torch"] if m.get("apple_silicon") else ["torch", "mlx"]
        return next((n for n in order if backends.get(n, {}).get("ok")), "none")

    def training_device(self) -> tuple[str, int]:
        """The device a run would use here and the bytes free on it (from the doctor report)."""
        m, backends = self.machine["machine"], self.machine["backends"]
        choice = str(self.query_one("#backend", Select).value)
        name = self.auto_backend() if choice == "auto" else choice
        device = backends.get(name, {}).get("device") or "cpu"
        if device == "cuda" and m.get("gpus"):
            return device, m["gpus"][0]["vram_bytes"]
        return ("mps" if device in ("mps", "gpu") else "cpu"), m["ram_available_bytes"]

    @background("fit")
    def estimate_fit(self, spec: TrainSpec, target: tuple[str, int]) -> None:
        from localft.hardware import fmt_bytes
        from localft.memory import estimate_memory
        from localft.models import catalog_entry

        key = spec.model
        try:
            device, free = target
            entry = catalog_entry(spec.model)
            folder = Path(spec.model).expanduser()
            if entry is None and not (folder / "config.json").is_file():
                self.post_message(FitEstimated(key, "fit: unknown until the model is downloaded", None))
                return
            estimate = estimate_memory(spec, entry or folder, device=device)
        except (LocalftError, OSError, KeyError, ValueError) as exc:
            self.post_message(FitEstimated(key, f"fit: cannot estimate ({exc})", None))
            return
        fits = estimate.total <= free
        mark = "fits" if fits else "does NOT fit"
        text = f"{mark}: needs ~{fmt_bytes(estimate.total)} of {fmt_bytes(free)} free ({device})"
        self.post_message(FitEstimated(key, text + "\n" + time_estimate(spec), fits))

    def on_fit_estimated(self, message: FitEstimated) -> None:
        fit = self.query_one("#fit", Static)
        fit.update(message.text)
        fit.set_class(message.fits is False, "error")

    # -- data report ------------------------------------------------------------------------
    @background("report")
    def load_report(self) -> None:
        source = self.query_one("#source", Input).value.strip()
        path = Path(source).expanduser()
        if not source or not path.exists():
            return
        spec = self.spec or TrainSpec()
        recipe = str(self.query_one("#recipe", Select).value)
        try:
            if recipe != "none" and own_importer(recipe):
                text = f"The {recipe} recipe reads this file itself; its data report appears in the run."
            else:
                text = preview_report(path, spec)
        except LocalftError as exc:
            self.post_message(DataReportReady(source, error=str(exc)))
            return
        self.post_message(DataReportReady(source, text=text))

    def on_data_report_ready(self, message: DataReportReady) -> None:
        if message.source != self.query_one("#source", Input).value.strip():
            return  # a report for a file the user has since replaced
        widget = self.query_one("#data-report", Static)
        # escape: the report holds placeholders like [email] that Rich markup would swallow
        widget.update(escape(message.error or message.text), layout=True)
        widget.set_class(bool(message.error), "error")
        self.report_for = message.source

    # -- actions ----------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "sample":
            self.action_demo()
        elif event.button.id == "browse":
            self.action_browse()

    def action_browse(self) -> None:
        from localft.tui.screens.file_picker import FilePicker

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#source", Input).value = str(path)

        current = Path(self.query_one("#source", Input).value.strip() or Path.cwd()).expanduser()
        self.app.push_screen(FilePicker(current if current.is_dir() else current.parent), chosen)

    def action_demo(self) -> None:
        """The demo: the style-clone recipe on the sample export with the embedded model."""
        sample = sample_export()
        if sample is None:
            self.notify("no sample export is installed", severity="warning")
            return
        self.query_one("#source", Input).value = str(sample)
        self.query_one("#model", Select).value = "embedded"
        self.query_one("#recipe", Select).value = "style-clone"

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_start(self) -> None:
        self.validate_form()
        if self.query_one("#start", Button).disabled or self.spec is None:
            self.notify(
                self.query_one("#form-error", Static).content or "the form is not valid", severity="error"
            )
            return
        self.starting = True
        self.query_one("#start", Button).disabled = True
        source = Path(self.query_one("#source", Input).value.strip()).expanduser()
        recipe = self.query_one("#recipe", Select).value
        self.notify("preparing the run: importing data...")
        self.launch(self.spec, source, str(recipe))

    @background("launch")
    def launch(self, spec: TrainSpec, source: Path, recipe: str) -> None:
        try:
            if recipe != "none":
                path = launch_recipe(recipe, spec, source, self.changed_fields())
            else:
                from localft.runner import launch_run

                run = launch_run(spec, source, emit=lambda e: self.post_message(RunEvents("prepare", [e])))
                path = run.path
        except LocalftError as exc:
            self.post_message(WorkFailed(str(exc)))
            self.app.call_from_thread(self._launch_failed)
            return
        self.post_message(RunLaunched(path))

    def _launch_failed(self) -> None:
        self.starting = False
        self.validate_form()

    def on_run_events(self, message: RunEvents) -> None:
        from localft.progress import describe

        lines = [describe(e) for e in message.events]
        if lines := [x for x in lines if x]:
            self.query_one("#form-error", Static).update(lines[-1])

    def on_run_launched(self, message: RunLaunched) -> None:
        from localft.tui.screens.training import TrainingScreen

        self.app.switch_screen(TrainingScreen(message.run_path))
