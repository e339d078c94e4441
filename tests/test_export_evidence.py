"""Verification sized to the evidence: a short held-out split is topped up to MIN_TOKENS, the table
shows the token count and the 95% intervals, a sound file passes and a file with one corrupted
tensor fails with exit 2 (one `error:` line), never exit 1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gguf import GGUFReader

from localft.export.verify import MIN_TOKENS, Parity, bootstrap_mean_interval, wilson_interval


def test_a_miss_within_the_interval_passes_and_one_beyond_it_fails():
    """+2.4% on 101 tokens with the interval a Q8_0 of the embedded model has there (+-2%) is no
    verdict; the same figure with a narrow interval is a miss."""
    noisy = Parity("Q8_0", 101, 0.95, 30.0, 30.72, True, ppl_change_interval=(0.004, 0.045))
    assert noisy.passed is True and noisy.problem is None
    narrow = Parity("Q8_0", 900, 0.95, 30.0, 31.2, True, ppl_change_interval=(0.03, 0.05))
    assert narrow.passed is False and "beyond the 95% interval on 900 tokens" in narrow.problem
    low_top1 = Parity("F16", 512, 0.90, 30.0, 30.0, True, top1_interval=(0.87, 0.92))
    assert low_top1.passed is False


def test_intervals_cover_what_they_should():
    assert wilson_interval(100, 100)[1] == pytest.approx(1.0) and wilson_interval(98, 100)[1] > 0.99
    values = np.random.default_rng(1).normal(0.01, 0.1, size=512)
    low, high = bootstrap_mean_interval(values)
    assert low < values.mean() < high and 0.015 < high - low < 0.025  # 2 * 1.96 * 0.1 / sqrt(512)


def _corrupt(path, name: str) -> None:
    """Shuffle the rows of one tensor in place: the same bytes and size, the wrong weights."""
    reader = GGUFReader(path, "r+")
    tensor = next(t for t in reader.tensors if t.name == name)
    rows = tensor.data.reshape(tensor.data.shape[0], -1)
    rows[:] = rows[np.random.default_rng(0).permutation(rows.shape[0])]
    reader.data.flush()


@pytest.mark.slow
def test_short_split_verifies_on_enough_tokens_and_a_corrupted_file_exits_2(tiny_models, tmp_path, capsys):
    from localft.config import TrainSpec
    from localft.run.folder import new_run
    from tests.test_cli import run_cli

    model = tiny_models("llama")
    run = new_run(TrainSpec(model=str(model)))
    import shutil

    shutil.copytree(model, run.merged_dir)
    run.mark_stage("merge")
    run.data_dir.mkdir(parents=True, exist_ok=True)
    posts = ["Shipped the fix at last.", "Coffee first, then code review.", "Small PRs get reviews."]
    rows = [{"messages": [{"role": "user", "content": "Write a post."}, {"role": "assistant", "content": p}]}
            for p in posts]  # fmt: skip
    run.split_path("test").write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()

    code, out, err = run_cli(capsys, "export", str(run.path), "-q", "Q8_0")
    assert code == 0, out + err
    report = json.loads((run.gguf_dir / "export.json").read_text())
    parity = report["files"][0]["parity"]
    assert parity["tokens"] >= MIN_TOKENS and report["verify_text"].startswith(
        f"{parity['tokens']} tokens: test split "
    )
    assert "bundled prose" in report["verify_text"] and parity["passed"] is True
    assert f"verified on {parity['tokens']} tokens" in out

    # A tiny random model's perplexity sits near its vocabulary size whatever one tensor holds, so the
    # broken file is an F16 one, judged on top-1 as well.
    code, out, err = run_cli(capsys, "export", str(run.path), "-q", "F16", "--no-verify")
    assert code == 0, out + err
    _corrupt(run.gguf_dir / f"{run.id}-F16.gguf", "blk.0.attn_v.weight")
    code, out, err = run_cli(capsys, "export", str(run.path), "-q", "F16")
    assert code == 2, out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # stage lines go to stderr too
    assert len(errors) == 1 and errors[0].startswith(
        "error: F16 misses its parity target beyond the 95% interval"
    )
    assert "FAIL" in out and "Traceback" not in out + err
