"""What this machine is (OS, CPU, memory, NVIDIA GPUs from nvidia-smi), found without importing torch
or mlx. Which backend can train here is each backend's own `check()`, never a guess from here."""

from __future__ import annotations

import importlib.metadata
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


@dataclass(frozen=True)
class Machine:
    """This machine as a plan sees it: what each backend's own `check()` found, and the memory free
    on each device. The dashboard builds it from its machine report, so both show the same."""

    backends: dict  # backend name -> localft.backends.Availability
    ram_available: int
    gpu_memory: int = 0  # the first NVIDIA GPU's memory (nvidia-smi), 0 without one
    gpus_listed: int = 0  # NVIDIA GPUs nvidia-smi lists, whether or not a backend can use them
    unified: bool = False  # Apple silicon: the GPU shares the RAM

    def memory_for(self, device: str) -> tuple[int, str]:
        """Bytes free for training on `device`, and what they are called."""
        if device == "cuda" and self.gpu_memory:
            return self.gpu_memory, "GPU memory"
        if device in ("mps", "gpu") or self.unified:
            return self.ram_available, "unified memory"
        return self.ram_available, "RAM"

    def notes_for(self, backend: str, device: str) -> list[str]:
        """Why a run lands on a slower device than the machine has."""
        if backend == "torch" and device != "cuda" and self.gpus_listed:
            return [
                f"device: nvidia-smi lists {self.gpus_listed} NVIDIA GPU(s) but this torch has no CUDA; "
                "install a CUDA build of torch to train on it"
            ]
        return []

    @classmethod
    def from_report(cls, report: dict) -> Machine:
        """From `localft doctor --json`'s report (what the dashboard holds)."""
        from localft.backends import Availability

        backends = {name: Availability(**a) for name, a in report["backends"].items()}
        return cls.of(report["machine"], backends)

    @classmethod
    def of(cls, info: dict, backends: dict) -> Machine:
        """From `MachineInfo.to_dict()` and each backend's availability."""
        gpus = info.get("gpus") or []
        return cls(
            backends=backends,
            ram_available=info["ram_available_bytes"],
            gpu_memory=gpus[0]["vram_bytes"] if gpus else 0,
            gpus_listed=len(gpus),
            unified=bool(info.get("apple_silicon")),
        )


def this_machine() -> Machine:
    from localft.backends import check_all

    return Machine.of(machine_info().to_dict(), check_all())
