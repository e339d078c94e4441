"""A run's merged model and its export: merge the adapter through the backend that trained it (once
per adapter), then export that HF folder with the run's held-out text and system prompt."""

from __future__ import annotations

import json
from pathlib import Path

from localft.atomic import atomic_write_json
from localft.chat.session import gguf_reply
from localft.config import ExportSpec
from localft.disk import require_free_space, space_errors
from localft.events import Emit, Stage
from localft.export.pipeline import ExportReport, export_bytes, export_folder, folder_stamp, parameter_count
from localft.run.folder import RunDir


def trained_backend(run: RunDir) -> str:
    """The backend that trained the run: its plan, else its RunStarted event, else its spec."""
    from localft.events import RunStarted, read_events
    from localft.plan.planner import plan, read_plan

    stored = read_plan(run.path)
    if stored is not None:
        return stored.backend
    started = [e for e in read_events(run.events_path) if isinstance(e, RunStarted)]
    if started:
        return started[-1].backend
    spec = run.read_spec()
    return spec.backend if spec.backend != "auto" else plan(spec).backend


def merge_bytes(run: RunDir, params: int) -> int:
    """Size of the merged folder: torch saves in the run's precision (fp32 unless bf16/fp16), MLX in
    the base's own dtype."""
    from localft.plan.catalog import resolve_model

    spec = run.read_spec()
    if trained_backend(run) == "torch":
        return params * (2 if spec.precision in ("bf16", "fp16") else 4)
    on_disk = sum(p.stat().st_size for p in resolve_model(spec.model).glob("*.safetensors"))
    return max(on_disk, params * 2)


def merge_to(run: RunDir, out: Path, *, export: ExportSpec | None = None) -> Path:
    """Merge the run's adapter into its base and write the HF folder `out`. Refused up front, with
    the numbers, when it cannot fit on the disk (with `export`, together with the GGUF files)."""
    from localft.backends import get_backend
    from localft.errors import RunError
    from localft.plan.catalog import resolve_model

    if not run.adapter_dir.is_dir():
        raise RunError(f"run {run.id} has no adapter yet; train or resume it first")
    out = Path(out)
    params = parameter_count(resolve_model(run.read_spec().model))
    needed = merge_bytes(run, params)
    what = "the merged model"
    if export is not None:
        needed += export_bytes(params, export)
        what += f" and the GGUF files ({', '.join(export.quants)})"
    require_free_space(out.parent, needed, what)
    with space_errors(out.parent):
        return Path(get_backend(trained_backend(run)).merge(run, out))


def merge_run(run: RunDir, *, emit: Emit | None = None, export: ExportSpec | None = None) -> Path:
    """The run's merged HF folder, merging the adapter into the base only when not done before."""
    emit = emit or (lambda _e: None)
    adapter = folder_stamp(run.adapter_dir)
    done = run.stage_done("merge") and (run.merged_dir / "config.json").is_file()
    if done and run._stages()["merge"].get("adapter_stamp", adapter) == adapter:
        emit(Stage("merge", 1, 1, "already merged"))
        return run.merged_dir
    emit(Stage("merge", 0, 1, "merging the adapter into the base weights"))
    out = merge_to(run, run.merged_dir, export=export)
    run.mark_stage("merge", {"path": str(out), "adapter_stamp": adapter})
    emit(Stage("merge", 1, 1, "merged"))
    return out


def export_run(
    run: RunDir, spec: ExportSpec, *, emit: Emit | None = None, out_dir: Path | None = None
) -> ExportReport:
    """Merge the run (once), export the merged folder into `out_dir` (default run.gguf_dir), verify
    on its test split; for a run on an Ollama / LM Studio model, the adapter alone
    (localft.run.local_adapter)."""
    from localft.run.local_adapter import RunExport, adapter_only, export_local_adapter

    out_dir = Path(out_dir) if out_dir is not None else run.gguf_dir
    if adapter_only(run, spec):
        merge = lambda r, e: merge_run(r, emit=e)  # noqa: E731
        return export_local_adapter(
            run,
            spec,
            RunExport(merge, held_out_documents, training_system_prompt),
            emit=emit,
            out_dir=out_dir,
        )
    if run.read_spec().head:
        from localft.errors import ExportError

        raise ExportError(no_gguf_for_head(run))
    merged = merge_run(run, emit=emit, export=spec)
    if spec.name is None:
        spec = spec.model_copy(update={"name": run.id})
    report = export_folder(
        merged, out_dir, spec, emit=emit, system_prompt=training_system_prompt(run),
        held_out=held_out_documents(run), log_path=run.path / "export.log", chat_reply=gguf_reply,
    )  # fmt: skip
    if spec.adapter_gguf and run.adapter_dir.is_dir():
        from localft.export.adapter import convert_adapter

        out = out_dir / f"{report.name}-lora-F32.gguf"
        report.adapter = str(convert_adapter(run.adapter_dir, merged, out))
        atomic_write_json(out_dir / "export.json", report.to_dict())
    run.mark_stage("export", {"files": [f.path for f in report.files], "ok": report.ok})
    return report


def no_gguf_for_head(run: RunDir) -> str:
    """The one line a classification-head run gets instead of a GGUF."""
    return (f"a GGUF cannot carry run {run.id}'s classification head; its model is an HF folder "
            f"(`localft merge {run.id}` writes it; load it with AutoModelForSequenceClassification)")  # fmt: skip


def held_out_documents(run: RunDir, limit_chars: int = 6000) -> list[tuple[str, str]]:
    """Assistant turns the model never trained on: the test split's, then the validation split's
    (verification tops these up with its bundled prose)."""
    documents = []
    for split, label in (("test", "test split"), ("valid", "validation split")):
        path = run.split_path(split)
        if not path.is_file():
            continue
        parts: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            parts += [m["content"] for m in row.get("messages", []) if m.get("role") == "assistant"]
            if sum(map(len, parts)) > limit_chars:
                break
        if parts:
            documents.append((label, "\n\n".join(parts)[:limit_chars]))
    return documents


def training_system_prompt(run: RunDir) -> str | None:
    """The system prompt the run trained with: its first training row's, else its spec's."""
    path = run.split_path("train")
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    messages = json.loads(line).get("messages", [])
                except ValueError:
                    continue
                return next((m["content"] for m in messages if m.get("role") == "system"), None)
    return run.read_spec().data.system_prompt
