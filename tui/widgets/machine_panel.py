"""This machine, as `localft doctor` reports it: chip, memory, and which backends can run."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.widgets import Static

from localft.disk import fmt_bytes


def describe_machine(report: dict[str, Any]) -> str:
    m = report.get("machine", report)
    lines = [
        f"[b]{escape(str(m.get('cpu', '?')))}[/b]  ({m.get('cores', '?')} cores, {m.get('os', '')} {m.get('arch', '')})"
    ]
    lines.append(
        f"memory {fmt_bytes(m.get('ram_bytes'))}, {fmt_bytes(m.get('ram_available_bytes'))} free"
        + (f"; disk {fmt_bytes(m.get('disk_free_bytes'))} free" if m.get("disk_free_bytes") else "")
    )
    for gpu in m.get("gpus") or []:
        lines.append(f"GPU {gpu['name']} {fmt_bytes(gpu['vram_bytes'])}")
    if m.get("apple_silicon"):
        lines.append("Apple silicon (unified memory)")
    for name, a in (report.get("backends") or {}).items():
        ok, device, reason = _availability(a)
        mark = "[green]ok[/green]" if ok else "[red]no[/red]"
        lines.append(f"{mark} {name}{f' ({device})' if ok and device else ''}: {escape(reason)}")
    return "\n".join(lines)


def _availability(a: Any) -> tuple[bool, str, str]:
    if isinstance(a, dict):
        return bool(a.get("ok")), a.get("device", ""), a.get("reason", "")
    return a.ok, a.device, a.reason


class MachinePanel(Static):
    def show(self, report: dict[str, Any]) -> None:
        self.update(describe_machine(report))
