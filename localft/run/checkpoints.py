"""Checkpoint integrity, framework-free: state.json (written last) records the size and sha256 of
every file beside it, and one verifier decides which checkpoint a resume may trust. Every backend,
the dashboard and `runs show` go through it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from localft.atomic import atomic_write_json
from localft.disk import require_free_space
from localft.events import Emit, Log
from localft.run.folder import RunDir

STATE_FILE = "state.json"
RECORD_KEY = "files"  # state.json: {...loop state..., "files": {name: {"size": n, "sha256": hex}}}
MAX_SAFETENSORS_HEADER = 100 * 1024**2  # the format's own limit
RESUMABLE = ("failed", "stopped")  # run statuses that `runs resume` continues


@dataclass(frozen=True)
class Damaged:
    """A checkpoint a resume skipped, and why (one line a user can read)."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.problem}"


def write_state(folder: Path, state: dict) -> None:
    """Write state.json with the integrity record of every other file in `folder`; call it last,
    once the tensors are written: its presence marks the checkpoint complete."""
    record = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != STATE_FILE):
        name = path.relative_to(folder).as_posix()
        record[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    atomic_write_json(Path(folder) / STATE_FILE, {**state, RECORD_KEY: record})


def read_state(folder: Path) -> dict:
    """The loop state a backend saved, without the integrity record."""
    data = json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8"))
    data.pop(RECORD_KEY, None)
    return data


def verify_checkpoint(folder: Path, hashes: bool = True) -> str | None:
    """None when the checkpoint can be trusted, else what is wrong with it. `hashes=False` checks
    sizes only (cheap enough for listing runs). A checkpoint written before the record existed is
    checked as far as its files allow: safetensors headers against file sizes, torch zip archives."""
    folder = Path(folder)
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{STATE_FILE} is missing or unreadable"
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        return f"{STATE_FILE} holds no step"
    record = state.get(RECORD_KEY)
    if record is None:
        return _verify_unrecorded(folder, hashes)
    for name, entry in record.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"{name} is missing"
        if size != entry["size"]:
            return f"{name} is {size:,} bytes but was {entry['size']:,} when written"
        if hashes and _sha256(path) != entry["sha256"]:
            return f"{name} changed since it was written (sha256 differs)"
    return None


def find_resume_checkpoint(run: RunDir, hashes: bool = True) -> tuple[Path | None, list[Damaged]]:
    """The newest checkpoint that verifies (None if none does), and the newer ones it skipped."""
    skipped = []
    for folder in reversed(run.checkpoints()):
        problem = verify_checkpoint(folder, hashes)
        if problem is None:
            return folder, skipped
        skipped.append(Damaged(folder, problem))
    return None, skipped


def resume_checkpoint(run: RunDir, emit: Emit) -> Path | None:
    """What a backend resumes from: the newest checkpoint that verifies. Each damaged one skipped
    is said in a warning, so the CLI, the dashboard and train.log all show it."""
    folder, skipped = find_resume_checkpoint(run)
    for bad in skipped:
        emit(Log(f"skipped damaged checkpoint {bad}; {fallback_text(folder)}", "warning"))
    return folder


def fallback_text(folder: Path | None) -> str:
    return f"resuming from {folder.name}" if folder else "no checkpoint verifies; training starts from step 0"


def resume_hint(run: RunDir, status: str, usable: Path | None) -> str | None:
    """For a failed or stopped run with a checkpoint that verifies (`usable`, from
    find_resume_checkpoint): the command that continues it."""
    if status not in RESUMABLE or usable is None:
        return None
    return f"`localft runs resume {run.id}` continues from {usable.name}"


def require_checkpoint_space(run: RunDir, step: int, trainable_bytes: int) -> None:
    """Refuse, with the numbers, a checkpoint the disk cannot hold: the adapter weights plus
    Adam's two moments of the same size (the RNG and counters are a few KiB)."""
    target = run.checkpoint_path(step)
    require_free_space(run.checkpoints_dir, 3 * trainable_bytes, f"checkpoint {target.name}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_unrecorded(folder: Path, deep: bool) -> str | None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != STATE_FILE):
        name = path.relative_to(folder).as_posix()
        if path.stat().st_size == 0:
            return f"{name} is empty"
        if path.suffix == ".safetensors":
            problem = _safetensors_problem(path)
        elif path.suffix == ".pt":
            problem = _zip_problem(path, deep)
        elif path.suffix == ".json" and deep:
            problem = _json_problem(path)
        else:
            problem = None
        if problem:
            return f"{name} {problem}"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """The header states where every tensor ends: the file must end exactly there."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 0 or n > min(size - 8, MAX_SAFETENSORS_HEADER):
            return "is truncated (incomplete header)"
        try:
            header = json.loads(f.read(n))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return "has an unreadable header"
    if 8 + n + end != size:
        return f"is {size:,} bytes but its header needs {8 + n + end:,}"
    return None


def _zip_problem(path: Path, deep: bool) -> str | None:
    """torch.save writes a zip archive: its directory must open, and with `deep` every CRC match."""
    try:
        with zipfile.ZipFile(path) as archive:
            if deep and archive.testzip() is not None:
                return "is corrupt (CRC mismatch)"
    except (zipfile.BadZipFile, OSError, EOFError):
        return "is truncated or corrupt"
    return None


def _json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "is not valid JSON"
    return None
