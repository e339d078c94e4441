"""GGUF export benchmark: our converter against llama.cpp's convert_hf_to_gguf.py on the embedded model
(time, peak memory, tensor-by-tensor comparison), HF parity of the files, and chat tokens/s against raw
llama-cpp-python. Prints a table, then one JSON line with the figures.

    python bench/gguf_export.py [--reference DIR]   # DIR: an extracted llama-cpp-python sdist (else pip fetches it)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench_home import use_temporary_home

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
CHAT_PROMPT = "Write a long story about a lighthouse keeper who records the weather."


def fetch_reference(into: Path) -> Path:
    """llama.cpp's converter from the llama-cpp-python source distribution (never committed)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        LLAMA_CPP_PYTHON,
        "-d",
        str(into),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sdist = next(into.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        wanted = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name and ("convert_hf_to_gguf" in m.name
                  or "/conversion/" in m.name or "/gguf-py/" in m.name)]  # fmt: skip
        tar.extractall(into, members=wanted, filter="data")
    return next(into.glob("llama_cpp_python-*/vendor/llama.cpp"))


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process, measured by the kernel (wait4)."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: the reference logs every tensor
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise RuntimeError(f"{cmd[:3]} failed: {log.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def compare_tensors(ours: Path, ref: Path) -> dict:
    import numpy as np
    from gguf import GGUFReader

    a, b = GGUFReader(ours), GGUFReader(ref)
    ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
    differ = [
        n
        for n in ta
        if n in tb
        and (
            ta[n].tensor_type != tb[n].tensor_type
            or not np.array_equal(np.asarray(ta[n].data), np.asarray(tb[n].data))
        )
    ]

    def kv(reader):
        return {f.name: f.contents() for f in reader.fields.values() if not f.name.startswith("GGUF.")}

    ka, kb = kv(a), kv(b)
    meta = sorted(k for k in set(ka) | set(kb) if ka.get(k) != kb.get(k))
    return {
        "tensors_compared": len(set(ta) & set(tb)),
        "tensors_only_one_side": sorted(set(ta) ^ set(tb)),
        "tensors_differing": differ,
        "tensors_identical": not differ and set(ta) == set(tb),
        "metadata_differences": meta,
    }


def chat_speed(gguf: Path, rounds: int = 5, max_tokens: int = 64, threads: int = 1) -> tuple[float, float]:
    """Median generation tokens/s through localft's ChatSession and through raw llama-cpp-python,
    same file, prompt, threads and greedy sampling, measured alternately. One thread by default: on a
    shared machine, llama.cpp's spinning worker threads make multi-thread timings mostly noise."""
    import llama_cpp

    from localft.chat.session import ChatSession
    from localft.export.llamacpp import extra_buffer_types, native_stderr_to, use_extra_buffers

    session = ChatSession(gguf, temperature=0.0, max_tokens=max_tokens, n_ctx=1024, n_threads=threads)
    # The raw baseline loads as localft does on this CPU: llama.cpp's AMX buffers crash in a VM.
    with native_stderr_to(None), extra_buffer_types(llama_cpp, use_extra_buffers()):
        raw = llama_cpp.Llama(str(gguf), n_ctx=1024, n_threads=threads, verbose=False)
    messages = [{"role": "user", "content": CHAT_PROMPT}]

    def ours() -> float:
        session.reset()
        list(session.stream(CHAT_PROMPT))
        return session.last.tok_per_s

    def theirs() -> float:
        start, n = time.perf_counter(), 0
        for chunk in raw.create_chat_completion(
            messages, max_tokens=max_tokens, temperature=0.0, stream=True
        ):
            n += bool(chunk["choices"][0]["delta"].get("content"))
        return n / (time.perf_counter() - start)

    ours(), theirs()  # warm both: first-call allocations, page cache
    mine, base = [], []
    for _ in range(rounds):
        mine.append(ours())
        base.append(theirs())
    session.close()
    raw.close()
    return statistics.median(mine), statistics.median(base)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--reference", type=Path, help="extracted vendor/llama.cpp folder (skips the pip fetch)"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed conversions per converter (best is kept)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="localft-bench-gguf-"))
    use_temporary_home(work)  # nothing this benchmark writes lands in the user's LOCALFT_HOME

    from localft.chat.session import gguf_reply
    from localft.export.gguf import convert_folder
    from localft.export.quantize import quantize_file
    from localft.export.verify import HfReference, bundled_text
    from localft.plan.catalog import embedded_model_dir

    model = embedded_model_dir()
    ref_dir = args.reference or fetch_reference(work / "sdist")
    ours_f16, ref_f16 = work / "ours-F16.gguf", work / "ref-F16.gguf"
    ours_cmd = [sys.executable, "-c", "import sys; from pathlib import Path; from localft.export.gguf import "
                "convert_folder; convert_folder(Path(sys.argv[1]), Path(sys.argv[2]), 'F16')", str(model), str(ours_f16)]  # fmt: skip
    ref_cmd = [
        sys.executable,
        str(ref_dir / "convert_hf_to_gguf.py"),
        str(model),
        "--outtype",
        "f16",
        "--outfile",
        str(ref_f16),
    ]
    ours_runs, ref_runs = [], []
    for _ in range(args.repeats):  # alternate, so a busy moment on a shared machine hits both
        ours_runs.append(run_measured(ours_cmd))
        ref_runs.append(run_measured(ref_cmd))
    (t_ours, m_ours), (t_ref, m_ref) = min(ours_runs), min(ref_runs)
    comparison = compare_tensors(ours_f16, ref_f16)

    q8 = convert_folder(model, work / "ours-Q8_0.gguf", "Q8_0").path
    q4 = quantize_file(ours_f16, work / "ours-Q4_K_M.gguf", "Q4_K_M")
    ref = HfReference(model, bundled_text())
    parity = {name: ref.compare(path, quant) for name, path, quant in (
        ("ours F16", ours_f16, "F16"), ("reference F16", ref_f16, "F16"), ("ours Q8_0", q8, "Q8_0"),
        ("ours Q4_K_M", q4, "Q4_K_M"))}  # fmt: skip
    stop = ref.stop_check(ours_f16, gguf_reply)
    chat_tok_s, raw_tok_s = chat_speed(q4)

    print(f"GGUF export of the embedded model ({model.name}), {os.cpu_count()} CPUs")
    print(f"{'converter':<14}{'time s':>9}{'peak MiB':>10}")
    print(f"{'localft':<14}{t_ours:>9.2f}{m_ours:>10.0f}")
    print(f"{'llama.cpp':<14}{t_ref:>9.2f}{m_ref:>10.0f}")
    print(f"F16 tensors: {comparison['tensors_compared']} compared, identical={comparison['tensors_identical']}; "
          f"metadata keys that differ: {', '.join(comparison['metadata_differences'])}")  # fmt: skip
    print(f"{'file':<16}{'tokens':>7}{'top-1':>9}{'ppl HF':>10}{'ppl GGUF':>10}{'change':>9}")
    for name, p in parity.items():
        print(
            f"{name:<16}{p.tokens:>7}{p.top1:>9.2%}{p.ppl_hf:>10.4f}{p.ppl_gguf:>10.4f}{p.ppl_change:>+9.4%}"
        )
    print(f"chat check (F16): {stop.gguf_text!r} finish={stop.finish_reason} same as HF={stop.same_text}")
    print(f"chat tok/s on Q4_K_M: localft {chat_tok_s:.1f}, raw llama-cpp-python {raw_tok_s:.1f}")
    figures = {
        "time_ours_s": round(t_ours, 3),
        "time_ref_s": round(t_ref, 3),
        "time_ratio": round(t_ours / t_ref, 3),
        "peak_mib_ours": round(m_ours),
        "peak_mib_ref": round(m_ref),
        "mem_ratio": round(m_ours / m_ref, 3),
        "tensors_identical": comparison["tensors_identical"],
        "tensors_compared": comparison["tensors_compared"],
        "metadata_differences": comparison["metadata_differences"],
        "top1_f16": round(parity["ours F16"].top1, 5),
        "ppl_hf": round(parity["ours F16"].ppl_hf, 4),
        "ppl_change_f16": parity["ours F16"].ppl_change,
        "top1_f16_ref": round(parity["reference F16"].top1, 5),
        "ppl_change_f16_ref": parity["reference F16"].ppl_change,
        "ppl_change_q8_0": parity["ours Q8_0"].ppl_change,
        "top1_q4_k_m": round(parity["ours Q4_K_M"].top1, 5),
        "ppl_change_q4_k_m": parity["ours Q4_K_M"].ppl_change,
        "f16_stops": stop.stopped,
        "chat_tok_s": round(chat_tok_s, 2),
        "raw_tok_s": round(raw_tok_s, 2),
        "chat_ratio": round(chat_tok_s / raw_tok_s, 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
