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

from localft.cli.doctor import device_count
from localft.config import TrainSpec, merge_overrides
from localft.errors import LocalftError
from localft.plan.catalog import CATALOG
from localft.tui.messages import (
    DataReportReady,
    MachineReport,
    PlanReady,
    RecipePlanned,
    RunEvents,
    RunLaunched,
    WorkFailed,
)
from localft.tui.run_setup import (
    BLANK,
    FIELDS,
    base_spec,
    form_overrides,
    form_values,
    local_choices,
    preview,
    recipe_choices,
    sample_export,
    start_run,
)
from localft.tui.workers import ReportsWorkerErrors, background


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
                models = [(f"{m.name} ({m.params_m:.0f}M)", m.name) for m in CATALOG] + local_choices()
                yield Select(models, value="embedded", allow_blank=False, id="model", compact=True)
                yield Input(placeholder="or a local folder / hub id", id="model-path", compact=True)
                yield Static("", id="fit")
                yield Label("Backend", classes="label")
                yield Select([("auto", "auto"), ("torch", "torch"), ("mlx", "mlx")], value="auto",
                             allow_blank=False, id="backend", compact=True)  # fmt: skip
                yield Static("", id="backend-info", classes="help")
                with Vertical(id="devices-field"):  # shown where more than one device is found
                    yield Label("Devices (processes, one per device)", classes="label")
                    yield Select([("1", 1)], value=1, allow_blank=False, id="nproc", compact=True)
                names = list(FIELDS)
                for pair in (names[i : i + 2] for i in range(0, len(names), 2)):
                    with Horizontal(classes="field-row"):
                        for name in pair:
                            _, label, help_text = FIELDS[name]
                            with Vertical(classes="field"):
                                yield Label(label, classes="label")
                                yield Input(
                                    form_values(TrainSpec())[name], id=f"f-{name}", tooltip=help_text,
                                    placeholder=BLANK.get(name, ""), compact=True,
                                )  # fmt: skip
                                yield Static(help_text, classes="help")
                                yield Static("", id=f"err-{name}", classes="error")
            with VerticalScroll(id="report-box"):
                yield Static("Plan", classes="title")
                yield Static("The plan appears once this machine is known.", id="plan")
                yield Static("Data report", classes="title")
                yield Static("Choose a file to see what will be trained on.", id="data-report")
        with Horizontal(id="start-row"):
            yield Static("", id="form-error", classes="error")
            yield Button("Start (ctrl+s)", id="start", variant="success", disabled=True, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.spec: TrainSpec | None = None
        self.base = TrainSpec()  # what the form's fields override: TrainSpec's or the recipe's settings
        self.data = None  # TrainingData of the chosen source, from the preview
        self.data_for: tuple = ()  # (source, model, recipe, data settings) the preview was made for
        self.starting = False
        self.plan = None  # the Plan the form shows, once made
        self.machine: dict | None = None
        self.query_one("#devices-field").display = False
        self.app.load_machine(self)
        self.validate_form()

    # -- form state -------------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#f-{name}", Input).value for name in FIELDS}

    def overrides(self) -> dict:
        """The form as TrainSpec overrides of `self.base` (every field, changed or not)."""
        backend = self.query_one("#backend", Select).value
        nproc = self.query_one("#nproc", Select).value
        return {
            "model": self.model_name(),
            "backend": backend,
            "nproc": nproc,
            **form_overrides(self.values()),
        }

    def model_name(self) -> str:
        return self.query_one("#model-path", Input).value.strip() or str(
            self.query_one("#model", Select).value
        )

    def recipe(self) -> str:
        return str(self.query_one("#recipe", Select).value)

    def source(self) -> str:
        return self.query_one("#source", Input).value.strip()

    def validate_form(self) -> None:
        """Validate through TrainSpec itself; each bad field shows pydantic's message under it."""
        errors: dict[str, str] = {}
        try:
            self.spec = merge_overrides(self.base, self.overrides())
        except LocalftError:
            self.spec = None
            try:
                TrainSpec.model_validate({**self.base.model_dump(), **self.overrides()})
            except ValidationError as exc:
                for err in exc.errors():
                    loc = tuple(str(x) for x in err["loc"])
                    name = next((n for n, (p, _, _) in FIELDS.items() if p == loc[: len(p)]), None)
                    errors[name or ".".join(loc)] = err["msg"]
        for name in FIELDS:
            self.query_one(f"#err-{name}", Static).update(errors.pop(name, ""))
        source = self.source()
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
            self.make_plan(self.spec, self.data if self.data_for == self.data_key() else None)

    def data_key(self) -> tuple:
        spec = self.spec or self.base
        return (self.source(), self.model_name(), self.recipe(), spec.data, spec.train_on)

    @on(Input.Changed)
    @on(Select.Changed)
    def form_changed(self, event) -> None:
        self.validate_form()
        changed = getattr(event, "input", None) or getattr(event, "select", None)
        if changed is not None and changed.id in ("source", "model", "model-path", "recipe"):
            self.load_report()
        if changed is not None and changed.id == "backend":
            self.show_backends()
        if changed is not None and changed.id in ("recipe", "backend"):
            self.plan_recipe(self.recipe(), self.model_name(), str(self.query_one("#backend", Select).value))

    def on_machine_report(self, message: MachineReport) -> None:
        self.machine = message.report
        self.show_backends()
        self.validate_form()
        if self.recipe() != "none":  # chosen before the machine was known: its settings come now
            self.plan_recipe(self.recipe(), self.model_name(), str(self.query_one("#backend", Select).value))

    def machine_now(self):
        from localft.plan.hardware import Machine

        return Machine.from_report(self.machine)

    def show_backends(self) -> None:
        if self.machine is None:
            return
        lines = [
            f"{'ok' if a['ok'] else 'no'} {n}: {a['reason']}" for n, a in self.machine["backends"].items()
        ]
        self.query_one("#backend-info", Static).update(escape("\n".join(lines)), layout=True)
        count, kind = device_count(self.machine["backends"])
        self.query_one("#devices-field").display = count > 1
        if count > 1:
            self.query_one("#nproc", Select).set_options([(f"{n} {kind}", n) for n in range(1, count + 1)])

    @background("recipe")
    def plan_recipe(self, name: str, model: str, backend: str) -> None:
        """The recipe's own settings for this machine fill the form (what `localft recipe run` uses)."""
        if self.machine is None:
            return
        try:
            spec = base_spec(name, model, backend, self.machine_now())
        except LocalftError as exc:
            self.post_message(RecipePlanned(name, {}, error=str(exc)))
            return
        self.post_message(RecipePlanned(name, form_values(spec), base=spec))

    def on_recipe_planned(self, message: RecipePlanned) -> None:
        if message.error:
            self.post_message(WorkFailed(message.error))
            return
        self.base = message.base
        for name, value in message.values.items():
            self.query_one(f"#f-{name}", Input).value = value
        self.validate_form()

    # -- the plan ---------------------------------------------------------------------------
    @background("plan")
    def make_plan(self, spec: TrainSpec, data) -> None:
        """`localft.plan.planner.plan` on the form's spec, this machine and the previewed data."""
        from localft.plan.planner import describe, plan

        try:
            p = plan(spec, self.machine_now(), data)
        except LocalftError as exc:
            self.post_message(PlanReady([f"cannot plan: {exc}"], None))
            return
        self.post_message(PlanReady(describe(p), p.fits, p))

    def on_plan_ready(self, message: PlanReady) -> None:
        self.plan = message.plan
        self.query_one("#plan", Static).update(escape("\n".join(message.lines)), layout=True)
        fit = self.query_one("#fit", Static)
        fit.update(escape(next((x for x in message.lines if x.startswith("memory:")), message.lines[0])))
        fit.set_class(message.fits is False, "error")

    # -- data report ------------------------------------------------------------------------
    @background("report")
    def load_report(self) -> None:
        """The data report and the training data the plan is sized from (a scratch import)."""
        source, key = self.source(), self.data_key()
        path = Path(source).expanduser()
        if not source or not path.exists():
            return
        try:
            found = preview(path, self.spec or self.base, self.recipe())
        except LocalftError as exc:
            self.post_message(DataReportReady(source, error=str(exc)))
            return
        self.post_message(DataReportReady(source, text=found.text, data=found.data, key=key))

    def on_data_report_ready(self, message: DataReportReady) -> None:
        if message.source != self.source():
            return  # a report for a file the user has since replaced
        widget = self.query_one("#data-report", Static)
        # escape: the report holds placeholders like [email] that Rich markup would swallow
        widget.update(escape(message.error or message.text), layout=True)
        widget.set_class(bool(message.error), "error")
        if message.key == self.data_key():
            self.data, self.data_for = message.data, message.key
            self.validate_form()

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
        self.notify("preparing the run: importing data...")
        self.launch(self.spec, Path(self.source()).expanduser(), self.recipe(), self.overrides())

    @background("launch")
    def launch(self, spec: TrainSpec, source: Path, recipe: str, overrides: dict) -> None:
        """The run is created here, on the plan the form shows; nothing plans it again."""
        try:
            run = start_run(
                spec, source, recipe, self.machine_now(), lambda e: self.post_message(RunEvents("prepare", [e])),
                overrides,
            )  # fmt: skip
        except LocalftError as exc:
            self.post_message(WorkFailed(str(exc)))
            self.app.call_from_thread(self._launch_failed)
            return
        self.post_message(RunLaunched(run.path))

    def _launch_failed(self) -> None:
        self.starting = False
        self.validate_form()

    def on_run_events(self, message: RunEvents) -> None:
        from localft.run.state import describe

        lines = [describe(e) for e in message.events]
        if lines := [x for x in lines if x]:
            self.query_one("#form-error", Static).update(lines[-1])

    def on_run_launched(self, message: RunLaunched) -> None:
        from localft.tui.screens.training import TrainingScreen

        self.app.switch_screen(TrainingScreen(message.run_path))
