"""A full disk is reported as a full disk: merged models and GGUF files are refused up front with
the numbers, a disk that fills mid-write is a one-line error, and nothing already written is lost.
The small disks are real tmpfs mounts in a private namespace (`unshare -rm`, no root needed)."""

from __future__ import annotations

import errno
import json
import shutil
import sys
from pathlib import Path

import pytest

from localft.disk import free_bytes, require_free_space, user_os_error
from localft.errors import ConfigError, DoesNotFit
from localft.export.gguf import convert_folder
from tests.hostile.models import run_with_adapter
from tests.hostile.process import LOCALFT, in_small_fs, run_measured, small_fs_available

REPO = Path(__file__).resolve().parents[1]
small_fs = pytest.mark.skipif(not small_fs_available(), reason="no unprivileged tmpfs mounts (unshare -rm)")


def test_refuses_a_write_larger_than_the_real_free_space(tmp_path):
    free = free_bytes(tmp_path / "not" / "made" / "yet")  # measured at the nearest existing folder
    with pytest.raises(DoesNotFit) as info:
        require_free_space(tmp_path, free + (1 << 30), "the merged model")
    message = str(info.value)
    assert "not enough disk space for the merged model: it needs about" in message
    assert f"{tmp_path} has" in message and "free" in message and "\n" not in message
    require_free_space(tmp_path, 1 << 20, "a small file")


def test_errors_that_mean_a_full_disk_or_a_forbidden_write_become_user_errors():
    def raised(exc: BaseException) -> BaseException:
        try:
            raise exc
        except BaseException as caught:
            return caught

    cases = [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        ),  # safetensors
        OSError("3145728 requested and 1211904 written"),  # numpy's short write
    ]
    for exc in cases:
        assert isinstance(user_os_error(raised(exc), "out/m.gguf"), DoesNotFit), exc
    wrapped = RuntimeError("writer failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert "the disk is full while writing out" in str(user_os_error(wrapped, "out"))
    assert isinstance(user_os_error(OSError(errno.EROFS, "Read-only file system"), "x"), ConfigError)
    assert user_os_error(ValueError("bad value")) is None
    assert user_os_error(OSError(errno.ENOENT, "No such file")) is None


@pytest.mark.slow
@small_fs
def test_export_and_merge_are_refused_up_front_on_a_small_disk(tmp_path, tiny_models):
    mount = tmp_path / "disk"
    mount.mkdir()
    export = LOCALFT + ["export", str(tiny_models("llama")), "-o", str(mount / "out"), "--quant", "F16"]
    export += ["--quant", "Q4_K_M", "--no-verify"]
    outcome = run_measured(in_small_fs(mount, 24, export, after=f'find "{mount}" -type f'), timeout=120)
    assert outcome.code == 2, outcome.describe()
    assert "error: not enough disk space for the GGUF files (F16, Q4_K_M): it needs about" in outcome.stderr
    assert "24.0 MiB free" in outcome.stderr, outcome.describe()
    assert outcome.stdout.strip() == ""  # nothing was written

    run = run_with_adapter(tmp_path, tiny_models("llama"))
    merge = LOCALFT + ["merge", str(run.path), "-o", str(mount / "merged")]
    outcome = run_measured(in_small_fs(mount, 8, merge, after=f'find "{mount}" -type f'), timeout=120)
    assert outcome.code == 2, outcome.describe()
    assert "error: not enough disk space for the merged model: it needs about" in outcome.stderr
    assert outcome.stdout.strip() == ""


def _fill(mount: Path, size_mib: float, mode: str, source: Path, before: str = "") -> dict:
    argv = [sys.executable, "-m", "tests.hostile.fill_disk", mode, str(mount), str(source)]
    outcome = run_measured(in_small_fs(mount, size_mib, argv, before=before), timeout=180, cwd=REPO)
    assert outcome.code == 0 and "Traceback" not in outcome.stderr, outcome.describe()
    return json.loads(outcome.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@small_fs
def test_a_disk_that_fills_mid_write_is_named_and_keeps_what_was_written(tmp_path, tiny_models):
    mount = tmp_path / "disk"
    mount.mkdir()
    model = tiny_models("llama")

    result = _fill(mount, 12, "export", model)  # room for the Q8_0 file, not for the F16 one after it
    assert result["error"].startswith("DoesNotFit: the disk is full while writing"), result
    q8 = "out/llama-Q8_0.gguf"
    assert set(result["files"]) == {q8, q8 + ".json"}, result  # the finished file and its record stay
    assert not any(".tmp" in name for name in result["files"])

    run = run_with_adapter(tmp_path, model)
    result = _fill(mount, 6, "merge", run.path)
    assert result == {"error": result["error"], "files": {}}, result  # no half-written merged folder
    assert result["error"].startswith("DoesNotFit: the disk is full while writing"), result

    f16 = convert_folder(model, tmp_path / "m-F16.gguf", "F16").path
    before = f'cp "{f16}" "{mount}/"'
    result = _fill(mount, f16.stat().st_size / 2**20 + 1, "quantize", f16, before=before)
    assert result["error"].startswith("DoesNotFit: the disk is full while writing"), result
    assert result["files"] == {f16.name: f16.stat().st_size}  # the source is intact, no partial output


@small_fs
def test_output_on_a_read_only_disk_is_one_line(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    data = tmp_path / "posts.jsonl"
    shutil.copy(REPO / "tests" / "fixtures" / "exports" / "prepared" / "chat.jsonl", data)
    argv = LOCALFT + ["data", "import", str(data), "-o", str(mount / "out")]
    outcome = run_measured(in_small_fs(mount, 1, argv, read_only=True), timeout=60)
    assert outcome.code == 2, outcome.describe()
    assert (
        outcome.stderr
        == f"error: cannot write to {mount / 'out'} (Read-only file system); choose a writable location\n"
    )
