"""Export an HF folder, whoever made it: convert -> quantize -> verify -> Modelfile / LM Studio.

Each finished file gets a `<file>.json` sidecar, so a rerun skips what is already complete. A run
is merged first by its caller (localft.run.export); nothing here reads a run.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localft.atomic import atomic_write_json
from localft.config import ExportSpec
from localft.disk import require_free_space, space_errors
from localft.events import Emit, Log, Stage

LLAMA_CPP_TYPES = ("Q4_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K")


@dataclass
class ExportedFile:
    path: str
    quant: str
    bytes: int
    parity: dict | None = None  # top1, ppl_hf, ppl_gguf, ppl_change, passed
    stop_check: dict | None = None


@dataclass
class ExportReport:
    source: str
    out_dir: str
    name: str
    files: list[ExportedFile] = field(default_factory=list)
    modelfile: str | None = None
    lmstudio_dir: str | None = None
    adapter: str | None = None
    system_prompt: str | None = None
    verify_text: str = ""  # how many held-out tokens, from where
    seconds: float = 0.0

    @property
    def stop_check(self) -> dict | None:
        """The chat stop check of the first verified file."""
        return next((f.stop_check for f in self.files if f.stop_check), None)

    @property
    def ok(self) -> bool:
        """No file missed its parity target and every checked file stopped at its end-of-turn token."""
        for f in self.files:
            if f.parity and f.parity.get("passed") is False:
                return False
            if f.stop_check and not f.stop_check.get("passed"):
                return False
        return True

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok, "stop_check": self.stop_check}


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "model"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def folder_stamp(folder: Path) -> list:
    """Names, sizes and modification times of a model folder's files: changes when it is rewritten."""
    if not Path(folder).is_dir():
        return []
    return sorted(
        [p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in Path(folder).iterdir() if p.is_file()
    )


def _complete(path: Path, source: Path) -> bool:
    try:
        info = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    return (
        info.get("complete") is True
        and info.get("source") == str(source)
        and info.get("source_stamp") == folder_stamp(source)
        and path.is_file()
        and path.stat().st_size == info.get("bytes")
    )


def _mark_complete(path: Path, quant: str, source: Path) -> None:
    atomic_write_json(
        _sidecar(path),
        {
            "complete": True,
            "quant": quant,
            "bytes": path.stat().st_size,
            "source": str(source),
            "source_stamp": folder_stamp(source),
            "time": time.time(),
        },
    )


def _emit(emit: Emit | None, event) -> None:
    if emit is not None:
        emit(event)


def parameter_count(model_dir: Path) -> int:
    """Parameters of an HF folder, from its safetensors headers (no weights are read)."""
    from localft.errors import ExportError
    from localft.export.weights import SafetensorsFolder

    try:
        entries = SafetensorsFolder(model_dir).entries.values()
    except ExportError:  # packed or quantized weights: count two bytes a parameter
        return sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors")) // 2
    return sum(math.prod(e.shape) for e in entries)


def gguf_bytes(params: int, quant: str) -> int:
    """About how large a GGUF of `quant` is for `params` parameters (vocabulary metadata aside)."""
    from localft.export.gguf import DIRECT_TYPES, gguf
    from localft.export.quantize import _SIZE_VS_F16

    if quant in DIRECT_TYPES:
        block, size = gguf.GGML_QUANT_SIZES[DIRECT_TYPES[quant][0]]
        return params * size // block
    return int(2 * params * _SIZE_VS_F16[quant])


def export_bytes(params: int, spec: ExportSpec, done: set[str] = frozenset()) -> int:
    """Disk an export needs at its peak: each GGUF not `done` yet, plus the F16 file the llama.cpp
    quantizer reads from (kept until the quantized files are written)."""
    quants = [q for q in spec.quants if q not in done]
    if any(q in LLAMA_CPP_TYPES for q in quants) and "F16" not in quants and "F16" not in done:
        quants.append("F16")
    return sum(gguf_bytes(params, q) for q in quants)


def export_folder(
    model_dir: Path,
    out_dir: Path,
    spec: ExportSpec,
    *,
    emit: Emit | None = None,
    system_prompt: str | None = None,
    held_out: list[tuple[str, str]] | None = None,
    log_path: Path | None = None,
    chat_reply=None,
) -> ExportReport:
    """Convert an HF folder into the GGUF types of `spec` under `out_dir`, verify and describe them.
    `chat_reply` (chat.session.gguf_reply) runs the chat check; without it verification skips it.
    `held_out`: (label, text) documents verification reads first; the bundled prose tops them up.
    Refuses up front, with the numbers, when the files cannot fit on the disk."""
    start = time.perf_counter()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    log_path = log_path or out_dir / "export.log"
    name = _safe_name(spec.name or model_dir.name)
    report = ExportReport(str(model_dir), str(out_dir), name, system_prompt=system_prompt)
    paths = {q: out_dir / f"{name}-{q}.gguf" for q in spec.quants}
    done = {q for q in spec.quants if _complete(paths[q], model_dir)}
    needed = export_bytes(parameter_count(model_dir), spec, done)
    require_free_space(out_dir, needed, f"the GGUF files ({', '.join(spec.quants)})")
    with space_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_ggufs(model_dir, out_dir, spec, name, paths, emit, log_path)
        report.files = [ExportedFile(str(paths[q]), q, paths[q].stat().st_size) for q in spec.quants]
        if spec.verify:
            _verify(report, model_dir, held_out, system_prompt, emit, log_path, chat_reply)
        _write_extras(report, model_dir, out_dir, spec, paths, system_prompt)
        report.seconds = time.perf_counter() - start
        atomic_write_json(out_dir / "export.json", report.to_dict())
    return report


def _write_ggufs(model_dir, out_dir, spec, name, paths, emit, log_path) -> None:
    """Convert (and quantize) each GGUF of `spec` not already complete."""
    from localft.export.gguf import DIRECT_TYPES, convert_folder
    from localft.export.quantize import quantize_file

    def convert(quant: str, path: Path) -> None:
        if _complete(path, model_dir):
            _emit(emit, Stage("convert", 1, 1, f"{path.name} already complete"))
            return
        convert_folder(
            model_dir,
            path,
            quant,
            name=name,
            # The stage, the file's type and a count of tensors ("convert Q8_0: 12/272").
            progress=lambda i, n, _tensor: _emit(emit, Stage("convert", i, n, quant)),
        )
        _mark_complete(path, quant, model_dir)

    for quant in spec.quants:
        if quant in DIRECT_TYPES:
            convert(quant, paths[quant])

    needs_llama = [q for q in spec.quants if q in LLAMA_CPP_TYPES]
    if needs_llama:
        f16 = paths.get("F16", out_dir / f"{name}-F16.gguf")
        for quant in needs_llama:
            if _complete(paths[quant], model_dir):
                _emit(emit, Stage("quantize", 1, 1, f"{paths[quant].name} already complete"))
                continue
            convert("F16", f16)
            quantize_file(
                f16,
                paths[quant],
                quant,
                log_path=log_path,
                # A count of tensors while it runs; the quantizer's own last line ("Q4_K_M in 2.5s") at the end.
                progress=lambda i, n, text, q=quant: _emit(
                    emit, Stage("quantize", i, n, text if n == 1 else q)
                ),
            )
            _mark_complete(paths[quant], quant, model_dir)
        if "F16" not in spec.quants:  # an intermediate: the quantized files are what was asked for
            f16.unlink(missing_ok=True)
            _sidecar(f16).unlink(missing_ok=True)


def _write_extras(report: ExportReport, model_dir, out_dir, spec, paths, system_prompt) -> None:
    """The Ollama Modelfile and the LM Studio folder, as asked."""
    from localft.export.gguf import read_config
    from localft.export.vocab import load_vocab

    config = read_config(model_dir)
    vocab = load_vocab(model_dir, config["vocab_size"])
    template = vocab.special.chat_template if vocab.special else None
    if isinstance(template, list):  # several named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    primary = paths[spec.quants[0]]
    if spec.ollama:
        from localft.export.ollama import write_modelfile

        eos_id = vocab.special.special_token_ids.get("eos") if vocab.special else None
        eos = vocab.tokens[eos_id] if eos_id is not None else None
        eos = eos.decode("utf-8", "replace") if isinstance(eos, bytes) else eos
        report.modelfile = str(
            write_modelfile(out_dir, primary.name, template, system_prompt=system_prompt, eos_token=eos)
        )
    if spec.lmstudio:
        from localft.export.ollama import lay_out_lmstudio

        report.lmstudio_dir = str(lay_out_lmstudio(primary, out_dir, report.name))


def _verify(
    report: ExportReport,
    model_dir: Path,
    held_out: list[tuple[str, str]] | None,
    system_prompt: str | None,
    emit: Emit | None,
    log_path: Path,
    chat_reply,
) -> None:
    from localft.export.verify import HfReference, bundled_text

    total = len(report.files)
    _emit(emit, Stage("verify", 0, total, "loading the HF model"))
    ref = HfReference(model_dir, [*(held_out or []), ("bundled prose", bundled_text())])
    report.verify_text = ref.describe_sources()
    for i, f in enumerate(report.files):
        _emit(emit, Stage("verify", i, total, f"{f.quant}: tokenization and next-token parity"))
        parity = ref.compare(Path(f.path), f.quant, log_path=log_path)
        f.parity = parity.to_dict()
        if chat_reply is not None:
            stop = ref.stop_check(Path(f.path), chat_reply, system=system_prompt, log_path=log_path)
            f.stop_check = stop.to_dict()
        if parity.problem:
            _emit(emit, Log(parity.problem, "warning"))
    _emit(emit, Stage("verify", total, total, "done"))
