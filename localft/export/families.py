"""Every architecture the GGUF converter knows. Importing this module registers them all: the
family modules register themselves into `archs` (which never imports them back)."""

from __future__ import annotations

from localft.errors import ExportError
from localft.export import archs_gemma, archs_qwen35  # noqa: F401  (they register on import)
from localft.export.archs import ARCHITECTURES, ArchDescription


def describe(config: dict) -> ArchDescription:
    """The description for an HF config, or an ExportError naming the architecture and the supported list."""
    names = config.get("architectures") or []
    for name in names:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    found = ", ".join(names) or config.get("model_type", "unknown")
    supported = ", ".join(sorted(ARCHITECTURES))
    raise ExportError(f"architecture {found} is not supported by the GGUF converter; supported: {supported}")
