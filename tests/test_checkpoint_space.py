"""A checkpoint the disk cannot hold is refused before it is written, with the numbers, and the run
ends failed with that one line (not a torch serializer error). The checkpoints folder is a real
64 KiB tmpfs, mounted in a private mount namespace around a real worker process."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from localft.events import Finished, read_events
from tests.training import make_run

TMPFS = "mount -t tmpfs -o size=64k none {folder}"


def private_mount_works(folder) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = ["unshare", "-rm", "sh", "-c", TMPFS.format(folder=shlex.quote(str(folder)))]
    return subprocess.run(probe, capture_output=True).returncode == 0


def test_a_checkpoint_that_does_not_fit_is_refused_with_the_numbers(tmp_path, tiny_models):
    spec, run = make_run(
        tmp_path, tiny_models("llama"), n_valid=0, backend="torch", steps=4, save_every=2, eval_every=100
    )
    run.checkpoints_dir.mkdir()
    if not private_mount_works(run.checkpoints_dir):
        pytest.skip("needs `unshare -rm` (user and mount namespaces) to mount a small tmpfs")
    folder = shlex.quote(str(run.checkpoints_dir))
    worker = f"{shlex.quote(sys.executable)} -m localft.run.worker {shlex.quote(str(run.path))}"
    script = f"{TMPFS.format(folder=folder)} && exec {worker}"
    with open(run.log_path, "wb") as log:
        done = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ}, timeout=300,
        )  # fmt: skip
    end = read_events(run.events_path)[-1]
    assert isinstance(end, Finished) and end.status == "failed", run.log_path.read_text()[-2000:]
    assert end.error.startswith("not enough disk space for checkpoint step-000002: it needs about ")
    assert "free; free some space or write to a larger disk (LOCALFT_HOME for runs" in end.error
    assert end.step == 2  # trained up to the refused checkpoint
    assert done.returncode == 2  # a user error, not a crash
    assert "Traceback" not in run.log_path.read_text()
