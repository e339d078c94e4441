"""What this machine is and which backends can run on it, found without importing torch or mlx."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

KEY_PACKAGES = (
    "torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "mlx", "mlx-lm",
    "gguf", "llama_cpp_python", "textual", "pydantic",
)  # fmt: skip


@dataclass
class Gpu:
    name: str
    vram_bytes: int
    driver: str = ""


@dataclass
class MachineInfo:
    os: str
    arch: str
    cpu: str
    cores: int
    ram_bytes: int
    ram_available_bytes: int
    apple_silicon: bool
    gpus: list[Gpu] = field(default_factory=list)
    packages: dict[str, str | None] = field(default_factory=dict)
    home: str = ""
    disk_free_bytes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _meminfo() -> tuple[int, int]:
    import psutil  # a dependency: the same numbers on Linux, macOS and Windows

    vm = psutil.virtual_memory()
    return vm.total, vm.available


def _cpu_name() -> str:
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True)
            if out.stdout.strip():
                return out.stdout.strip()
        except OSError:
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_gpus() -> list[Gpu]:
    """GPUs from nvidia-smi: no torch needed, so it works before the CUDA extra is installed."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[1].isdigit():
            gpus.append(Gpu(parts[0], int(parts[1]) * 1024**2, parts[2] if len(parts) > 2 else ""))
    return gpus


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def machine_info() -> MachineInfo:
    from localft.paths import localft_home

    total, available = _meminfo()
    home = localft_home()
    probe = home
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = None
    return MachineInfo(
        os=f"{platform.system()} {platform.release()}",
        arch=platform.machine(),
        cpu=_cpu_name(),
        cores=os.cpu_count() or 1,
        ram_bytes=total,
        ram_available_bytes=available,
        apple_silicon=is_apple_silicon(),
        gpus=nvidia_gpus(),
        packages={p: package_version(p) for p in KEY_PACKAGES},
        home=str(home),
        disk_free_bytes=free,
    )


def backend_availability():
    """name -> Availability for each backend, from installed packages and hardware only."""
    from localft.backends import Availability

    result = {}
    has = lambda mod: importlib.util.find_spec(mod) is not None  # noqa: E731
    if not (has("torch") and has("transformers") and has("peft")):
        result["torch"] = Availability(
            False, "", "torch, transformers or peft missing: pip install 'localft[cuda]'"
        )
    elif nvidia_gpus():
        result["torch"] = Availability(True, "cuda", "CUDA: QLoRA (NF4) or bf16 LoRA")
    elif is_apple_silicon():
        result["torch"] = Availability(True, "mps", "Apple MPS: LoRA (MLX is faster on this machine)")
    else:
        result["torch"] = Availability(True, "cpu", "CPU: fp32 LoRA (slow; fine for small models)")
    if not (has("mlx") and has("mlx_lm")):
        hint = "pip install 'localft[mlx]'" + ("" if is_apple_silicon() else " (mlx[cpu] on Linux)")
        result["mlx"] = Availability(False, "", f"mlx or mlx-lm missing: {hint}")
    elif is_apple_silicon():
        result["mlx"] = Availability(True, "gpu", "MLX on Apple silicon (Metal)")
    else:
        result["mlx"] = Availability(True, "cpu", "MLX on CPU (mlx[cpu]; slow, for small models)")
    return result


def fmt_bytes(n: int | float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
