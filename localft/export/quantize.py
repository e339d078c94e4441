"""K-quants (and Q4_0) through llama.cpp's own quantizer, in-process via llama-cpp-python."""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from localft.disk import disk_full_error, nearly_full
from localft.errors import ExportError
from localft.export.gguf import check_disk
from localft.export.llamacpp import native_stderr_to, require_llama_cpp

# quant name -> llama_ftype (llama.h LLAMA_FTYPE_MOSTLY_*)
LLAMA_QUANTS: dict[str, str] = {
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
}
# Rough output size relative to the F16 source, for the free-disk check.
_SIZE_VS_F16 = {"Q4_0": 0.3, "Q2_K": 0.25, "Q3_K_M": 0.3, "Q4_K_M": 0.4, "Q5_K_M": 0.45, "Q6_K": 0.5}
_TENSOR_LINE = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")

Progress = Callable[[int, int, str], None]


def _watch_progress(log: Path, offset: int, progress: Progress, done: threading.Event) -> None:
    """Follow llama.cpp's per-tensor lines ("[ 12/ 272] blk.0.attn_k.weight ...") in the log."""
    last = 0
    while not done.wait(0.2):
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                matches = _TENSOR_LINE.findall(f.read())
        except OSError:
            continue
        if matches and int(matches[-1][0]) != last:
            i, n, name = matches[-1]
            last = int(i)
            progress(last, int(n), name.decode(errors="replace"))


def quantize_file(
    src: Path,
    dst: Path,
    quant: str,
    *,
    log_path: Path | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> Path:
    """Quantize an F16/F32/BF16 GGUF to `quant`. The file appears under `dst` only when complete."""
    if quant not in LLAMA_QUANTS:
        raise ExportError(
            f"{quant} is not a llama.cpp quantization type; choose one of {', '.join(LLAMA_QUANTS)}"
        )
    llama_cpp = require_llama_cpp()
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    check_disk(dst, int(src.stat().st_size * _SIZE_VS_F16[quant]))
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_QUANTS[quant])
    params.nthread = threads or (os.cpu_count() or 1)

    own_log = log_path is None
    if own_log:
        fd, name = tempfile.mkstemp(prefix="localft-quantize-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    offset = log_path.stat().st_size if log_path.exists() else 0
    done = threading.Event()
    watcher = None
    if progress:
        watcher = threading.Thread(
            target=_watch_progress, args=(log_path, offset, progress, done), daemon=True
        )
        watcher.start()
    try:
        with native_stderr_to(log_path):
            started = time.perf_counter()
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        if rc != 0 or not tmp.is_file():
            if nearly_full(dst.parent):  # llama.cpp only says "iostream error"
                raise disk_full_error(dst)
            raise ExportError(
                f"llama.cpp could not quantize {src.name} to {quant} (code {rc}); see {log_path}"
            )
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
        if progress:
            progress(1, 1, f"{quant} in {time.perf_counter() - started:.1f}s")
    finally:
        done.set()
        if watcher:
            watcher.join()
        tmp.unlink(missing_ok=True)
        if own_log:
            log_path.unlink(missing_ok=True)
    return dst
