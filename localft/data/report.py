"""The data report: what was read, what each step dropped or changed, the splits, token statistics.

Saved as data/report.json; `format_report` renders it for `localft data inspect` and the dashboard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class DataReport:
    platform: str  # importer name (linkedin, x, ..., chat, completions, textrows), or "mixed" for several
    platform_name: str
    source: str
    author: str | None
    system_prompt: str
    read: int
    kept: int
    dropped: dict[str, int]
    changed: dict[str, int]
    splits: dict[str, int]
    by_source: dict[str, int]
    lengths: dict = field(default_factory=dict)  # unit (chars|tokens), histogram [[lo, hi, n], ...]
    tokens: dict | None = (
        None  # tokenizer, rows, total, mean, p95, max, max_seq_len, over_max_seq_len, trained, system_folded
    )
    samples: list[dict] = field(default_factory=list)  # a few rows: request and reply
    # one entry per input: source, platform, platform_name, read, kept, dropped, changed
    sources: list[dict] = field(default_factory=list)
    residue: list[dict] = field(
        default_factory=list
    )  # format debris in kept posts: kind, what, posts, example

    @property
    def counts(self) -> dict[str, int]:
        return {"read": self.read, "kept": self.kept, **self.splits}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DataReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def histogram(values: list[int], bins: int = 8) -> list[list[int]]:
    """[[lo, hi, count], ...] over equal-width bins from the smallest to the largest value."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = max(1, -(-(hi - lo + 1) // bins))
    out = [[lo + i * width, lo + (i + 1) * width - 1, 0] for i in range(bins)]
    for v in values:
        out[min((v - lo) // width, bins - 1)][2] += 1
    while out and out[-1][2] == 0:
        out.pop()
    return out


def _counts_line(title: str, counts: dict[str, int]) -> str:
    return f"{title:<9}" + (", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none")


def format_report(report: DataReport | dict, samples: int = 3, width: int = 32) -> str:
    """Plain text (also valid rich markup-free text): counts per source and filter, tokens, histogram, samples."""
    r = report if isinstance(report, DataReport) else DataReport.from_dict(report)
    split = " · ".join(f"{k} {v}" for k, v in r.splits.items())
    lines = [
        f"{r.platform_name} data from {r.source}" + (f" (author: {r.author})" if r.author else ""),
        f"read {r.read} → kept {r.kept} → {split}",
        _counts_line("dropped", r.dropped),
        _counts_line("changed", r.changed),
    ]
    if len(r.sources) > 1:
        for src in r.sources:
            dropped = ", ".join(f"{k} {v}" for k, v in src["dropped"].items()) or "nothing dropped"
            lines.append(
                f"  {src['platform_name']} {src['source']}: read {src['read']} → kept {src['kept']} ({dropped})"
            )
    elif len(r.by_source) > 1:
        lines.append(_counts_line("files", r.by_source))
    if r.tokens:
        t = r.tokens
        lines.append(
            f"tokens   {t['rows']} rows, {t['total']} in all, mean {t['mean']:.0f}, p95 {t['p95']}, max {t['max']}; "
            f"{t['over_max_seq_len']} over max_seq_len {t['max_seq_len']}"
        )
    hist = r.lengths.get("histogram") or []
    if hist:
        top = max(n for _, _, n in hist) or 1
        lines.append(f"length in {r.lengths.get('unit', 'chars')}:")
        for lo, hi, n in hist:
            bar = "█" * max(1 if n else 0, round(width * n / top))
            lines.append(f"  {lo:>5}-{hi:<5} {bar} {n}")
    lines.append(f"system   {r.system_prompt}")
    if r.tokens and r.tokens.get("system_folded"):
        lines.append(
            f"         folded into the first user turn of {r.tokens['system_folded']} rows: "
            "the model's chat template has no system role"
        )
    for item in r.residue:
        lines.append(f"warning  {item['posts']} {item['what']}, e.g. {item['example']}")
    if r.residue:
        lines.append(
            "         the import may not have undone this export's format: check these posts before training"
        )
    for row in r.samples[:samples]:
        reply = row.get("reply", "").replace("\n", " ⏎ ")
        lines.append(f"example  {row.get('request', '')}")
        lines.append(f"         → {reply[:150]}{'…' if len(reply) > 150 else ''}")
    return "\n".join(lines)
