"""The adapter-only export of a run trained on an Ollama / LM Studio model: the LoRA adapter as a
GGUF for the user's own base file, a Modelfile (Ollama) or a README.txt (LM Studio) to load it, and
llama.cpp's base + adapter checked against the HF merged model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_json, atomic_write_text
from localft.config import ExportSpec
from localft.events import Emit, Stage
from localft.export.pipeline import ExportedFile, ExportReport
from localft.run.folder import RunDir

ADAPTER_FILE = "adapter.gguf"
FULL_PRECISION = ("F32", "F16", "BF16")  # a base of these types needs no reference row


@dataclass(frozen=True)
class RunExport:
    """What this export needs of a run's ordinary export (localft.run.export), handed in by it so
    the two modules do not import each other."""

    merge: Callable[[RunDir, Emit], Path]  # the HF merged folder (made once)
    held_out: Callable[[RunDir], list[tuple[str, str]]]  # (label, text) the run never trained on
    system_prompt: Callable[[RunDir], str | None]


def adapter_only(run: RunDir, spec: ExportSpec) -> bool:
    """Whether this export writes the adapter alone: asked for, else whenever the base is a local model."""
    from localft.plan.local_models import is_local_id

    return spec.adapter_only if spec.adapter_only is not None else is_local_id(run.read_spec().model)


def export_local_adapter(
    run: RunDir,
    spec: ExportSpec,
    run_export: RunExport,
    *,
    emit: Emit | None = None,
    out_dir: Path | None = None,
) -> ExportReport:
    """adapter.gguf (+ Modelfile or README.txt) in `out_dir` (default run.gguf_dir); verified unless
    spec.verify is off."""
    from localft.errors import ExportError
    from localft.export.adapter import convert_adapter
    from localft.plan.catalog import resolve_model
    from localft.plan.local_models import OLLAMA, find_local_model, is_local_id

    emit = emit or (lambda _e: None)
    start = time.perf_counter()
    model_id = run.read_spec().model
    if not is_local_id(model_id):
        raise ExportError(
            f"run {run.id} trained on {model_id}, not an ollama:/lmstudio: model; "
            "--adapter-only needs the base file the adapter goes on (use --adapter for a LoRA GGUF beside the merged model)"
        )
    if not run.adapter_dir.is_dir():
        raise ExportError(f"run {run.id} has no adapter yet; train or resume it first")
    local = find_local_model(model_id)
    out_dir, log_path = Path(out_dir or run.gguf_dir), run.path / "export.log"
    report = ExportReport(str(local.gguf), str(out_dir), spec.name or run.id)
    emit(Stage("export", 0, 1, "writing the LoRA adapter GGUF"))
    adapter = convert_adapter(run.adapter_dir, resolve_model(model_id), out_dir / ADAPTER_FILE)
    report.adapter = str(adapter)
    emit(Stage("export", 1, 1, "adapter written"))
    system = run_export.system_prompt(run)
    if local.app == OLLAMA:
        from localft.export.ollama import write_modelfile

        eos = _eos_token(resolve_model(model_id))
        report.modelfile = str(
            write_modelfile(
                out_dir, None, local.info.chat_template, system_prompt=system, eos_token=eos,
                from_model=local.name, adapter=ADAPTER_FILE,
            )
        )  # fmt: skip
    else:
        atomic_write_text(out_dir / "README.txt", lmstudio_instructions(local.name, local.gguf, adapter))
    checked = ExportedFile(str(adapter), f"{local.info.quantization} base + adapter", adapter.stat().st_size)
    report.files = [checked]
    if spec.verify:
        from localft.export.verify import HfReference, bundled_text

        emit(Stage("verify", 0, 1, "llama.cpp base + adapter against the HF merged model"))
        documents = [*run_export.held_out(run), ("bundled prose", bundled_text())]
        ref = HfReference(run_export.merge(run, emit), documents)
        report.verify_text = ref.describe_sources()
        # The base file's own type sets the target (F16 holds 99% top-1; a quantized base is reported).
        parity = ref.compare(local.gguf, local.info.quantization, log_path=log_path, lora_path=adapter)
        checked.parity = parity.to_dict()  # its "quant": the base's type, whose target applied
        if local.info.quantization not in FULL_PRECISION:
            emit(Stage("verify", 0, 1, "the adapter on an F16 copy of the base, for reference"))
            report.files.append(
                f16_reference(ref, resolve_model(model_id), run.path, adapter, checked, log_path=log_path)
            )
        emit(Stage("verify", 1, 1, "done"))
    report.system_prompt = system
    report.seconds = time.perf_counter() - start
    atomic_write_json(out_dir / "export.json", report.to_dict())
    run.mark_stage("export", {"files": [str(adapter)], "ok": report.ok, "adapter_only": True})
    return report


def f16_reference(
    ref, model_dir: Path, scratch: Path, adapter: Path, quantized: ExportedFile, *, log_path: Path
) -> ExportedFile:
    """The adapter on an F16 copy of the base (converted from the HF folder training read, deleted
    once measured): the F16 target checks the adapter itself, and the quantized base's row gets how
    far its quantization moves perplexity and top-1 from there (`vs_f16_base`). The copy is made in
    `scratch` (the run folder), never where chat looks for GGUF files."""
    import os

    from localft.export.gguf import convert_folder

    tmp = Path(scratch) / f".base-F16-{os.getpid()}.gguf.tmp"
    try:
        size = convert_folder(model_dir, tmp, "F16").path.stat().st_size
        parity = ref.compare(tmp, "F16", log_path=log_path, lora_path=adapter)
    finally:
        tmp.unlink(missing_ok=True)
    quantized.parity["vs_f16_base"] = {
        "ppl_shift": quantized.parity["ppl_gguf"] / parity.ppl_gguf - 1.0,
        "top1_shift": quantized.parity["top1"] - parity.top1,
    }
    return ExportedFile("", "F16 copy + adapter", size, parity.to_dict())


def _eos_token(model_dir: Path) -> str | None:
    """The end-of-sequence token the base's tokenizer names (a Modelfile stop as well)."""
    try:
        eos = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get("eos_token")
    except (OSError, ValueError):
        return None
    return eos.get("content") if isinstance(eos, dict) else eos


def lmstudio_instructions(name: str, base: Path, adapter: Path) -> str:
    return (
        f"LoRA adapter for the LM Studio model {name}, trained by localft.\n\n"
        f"  base model:  {base}\n  adapter:     {adapter.name} (this folder)\n\n"
        "localft knows no LM Studio setting that loads a LoRA adapter on a model (none was tested:\n"
        "LM Studio does not run where localft is tested). The adapter runs in llama.cpp, LM Studio's\n"
        "engine, on top of that same file:\n\n"
        f'  llama-server -m "{base}" --lora "{adapter}"\n\n'
        "For a model LM Studio itself lists, export the merged model instead:\n"
        "  localft export RUN --merged --lmstudio\n"
    )
