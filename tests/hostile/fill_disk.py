"""Run one writer on a small disk whose free-space check has passed, as when another program fills
the disk meanwhile; print the error it raised and the files left on that disk, as one JSON line.

python -m tests.hostile.fill_disk export|merge|quantize MOUNT SOURCE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(mode: str, mount: Path, source: Path) -> None:
    import localft.export.gguf as gguf_module
    import localft.export.pipeline as pipeline
    import localft.export.quantize as quantize_module
    import localft.run.export as run_export
    from localft.config import ExportSpec
    from localft.errors import LocalftError
    from localft.run.folder import RunDir

    def passes(*args, **kwargs) -> None:
        return None

    # Only the up-front checks are switched off; every write below meets the real full disk.
    pipeline.require_free_space = gguf_module.require_free_space = quantize_module.check_disk = passes
    run_export.require_free_space = passes
    error = None
    try:
        if mode == "export":
            spec = ExportSpec(quants=["Q8_0", "F16"], verify=False, ollama=False)
            pipeline.export_folder(source, mount / "out", spec)
        elif mode == "merge":
            run_export.merge_to(RunDir(source), mount / "merged")
        else:
            quantize_module.quantize_file(mount / source.name, mount / "m-Q4_K_M.gguf", "Q4_K_M")
    except LocalftError as exc:
        error = f"{type(exc).__name__}: {exc}"
    files = {str(p.relative_to(mount)): p.stat().st_size for p in sorted(mount.rglob("*")) if p.is_file()}
    print(json.dumps({"error": error, "files": files}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
