"""evaluate_run on a real (tiny) GGUF: report files, plots, and figures that follow from the inputs."""

import json
import math
import shutil

import pytest

from localft.config import TrainSpec
from localft.eval.base_gguf import base_gguf_path
from localft.eval.evaluate import evaluate_run
from localft.eval.report import headline_rows
from localft.events import Eval, EventSink, Step
from localft.run.folder import new_run

pytest.importorskip("llama_cpp")

POSTS = [
    "Shipped the new onboarding flow today 🚀\n\n- 3 screens instead of 9\n- no passwords\n\nWhat should we cut next? #product",
    "Hiring lesson of the week: write the job down before you post it. Everyone saves time. #hiring",
    "I was wrong about remote work. Here is what changed my mind 👇\n\n1. Async docs\n2. Fewer meetings\n3. Trust",
    "Coffee chat with a founder today reminded me: the best teams argue about ideas, never about people.",
    "We crossed 10,000 users! Thank you to everyone who sent feedback along the way 🙏 #milestone",
    "Three books that changed how I manage: High Output Management, Radical Candor, and The Manager's Path.",
]


def _row(post: str, i: int) -> dict:
    return {
        "messages": [
            {"role": "system", "content": "You write LinkedIn posts in Sam's voice."},
            {"role": "user", "content": f"Write a LinkedIn post about topic {i}."},
            {"role": "assistant", "content": post},
        ]
    }


def _write_split(run, name, posts, offset=0):
    run.data_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(_row(p, i + offset)) for i, p in enumerate(posts)]
    run.split_path(name).write_text("\n".join(lines) + "\n")


@pytest.mark.llama
def test_report_of_identical_models_shows_no_change(tiny_models):
    folder = tiny_models("llama")
    run = new_run(TrainSpec(model=str(folder)))
    _write_split(run, "train", POSTS[:4])
    _write_split(run, "test", POSTS[2:], offset=10)
    with EventSink(run.events_path) as sink:
        for step in range(1, 6):
            sink(Step(step, 5, 3.0 - 0.2 * step, 1e-3, 100 * step, 50.0, 10**8))
        sink(Eval(5, 2.4))

    base = base_gguf_path(str(folder), "Q8_0")
    assert base.read_bytes()[:4] == b"GGUF"
    assert base_gguf_path(str(folder), "Q8_0") == base  # cached, not rebuilt
    run.gguf_dir.mkdir()
    shutil.copy(base, run.gguf_dir / "tiny-Q8_0.gguf")  # "tuned" = the base file itself

    stages = []
    report = evaluate_run(run, samples=2, max_tokens=12, emit=stages.append)

    ppl = report["metrics"]["perplexity"]
    assert math.isfinite(ppl["base"]) and ppl["base"] > 1
    assert ppl["base"] == pytest.approx(ppl["tuned"], rel=1e-6)  # same file, same figure
    assert report["quant"] == "Q8_0" and report["test_rows"] == 4 and len(report["samples"]) == 2
    assert report["samples"][0]["real"] == POSTS[2]
    assert [s["base"] for s in report["samples"]] == [s["tuned"] for s in report["samples"]]  # same seed
    assert report["metrics"]["style_distance"]["base"] == report["metrics"]["style_distance"]["tuned"]
    assert {r[3] for r in headline_rows(report)} == {"same"}
    assert stages[-1].name == "eval" and stages[-1].done == stages[-1].total

    # The rewards a grpo round would train on, on the same generations: recomputed from the samples.
    from localft.eval.rewards import RowScorer

    scorer = RowScorer.for_run(run, run.read_spec())
    rows = [json.loads(line) for line in run.split_path("test").read_text().splitlines()][:2]
    for who in ("base", "tuned"):
        scores = [scorer.score_row(r, [s[who]])[0] for r, s in zip(rows, report["samples"], strict=True)]
        reward = report["rewards"][who]
        assert reward["mean"] == pytest.approx(sum(scores) / 2) and (reward["n"], reward["draws"]) == (2, 1)
        assert set(reward["parts"]) == {"style", "copied", "form"}
        assert reward["low"] <= reward["mean"] <= reward["high"]
    assert report["metrics"]["reward"]["base"] == report["metrics"]["reward"]["tuned"]
    gain = report["reward_gains"]["base"]  # the same file both sides: no gain on any request
    assert (gain["mean"], gain["low"], gain["high"], gain["higher"], gain["lower"], gain["n"]) == (
        0,
        0,
        0,
        0,
        0,
        2,
    )

    md = (run.eval_dir / "report.md").read_text()
    assert "| Test perplexity of the real replies |" in md and POSTS[2].splitlines()[0] in md
    assert "## Reward on held-out requests" in md and "style x 1, copied x 1, form x 0.5" in md
    assert "one generation per request" in md and "| Requests | style | copied | form |" in md
    assert "Tuned - base on the same 2 requests: +0.000 (95% interval +0.000 to +0.000); higher on 0" in md
    assert json.loads((run.eval_dir / "report.json").read_text())["metrics"] == report["metrics"]
    twice = evaluate_run(run, samples=2, max_tokens=12, reward_draws=2)
    assert twice["samples"] == report["samples"]  # a second draw changes no other figure
    assert (
        twice["metrics"]["rouge_l"] == report["metrics"]["rouge_l"]
        and twice["rewards"]["tuned"]["draws"] == 2
    )
    assert twice["rewards"]["base"]["values"] == twice["rewards"]["tuned"]["values"]  # same file, same seeds
    for png in ("training_curves.png", "fingerprints.png"):
        assert (run.eval_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_paired_gain_is_tighter_than_the_two_models_own_intervals():
    """Requests that are easy or hard for both models: each model's own interval is wide, their
    per-request difference is the same 0.1 everywhere, so its interval is exactly that."""
    from localft.eval.rewards import paired_gain

    easy_and_hard = [0.1, 0.9, 0.2, 0.8, 0.5]
    better = {"values": [v + 0.1 for v in easy_and_hard]}
    gain = paired_gain(better, {"values": easy_and_hard})
    assert gain["mean"] == pytest.approx(0.1) and gain["low"] == pytest.approx(0.1)
    assert gain["high"] == pytest.approx(0.1) and (gain["higher"], gain["lower"], gain["n"]) == (5, 0, 5)


def test_a_requests_reward_is_the_mean_of_its_draws():
    """Several generations per held-out request: the request's value is their mean (what makes a
    round's gain measurable with few requests), each reward's own mean is over every draw."""
    from localft.eval.rewards import Request, RowScorer, RunData, Scorer

    rows = [_row(p, i) for i, p in enumerate(POSTS[:2])]
    scorer = RowScorer(Scorer.for_task("style", RunData([r["messages"][-1]["content"] for r in rows])))
    drafts = [["short", POSTS[3], "Another one.\n\nWith lines. #tag"], ["x", "y y y", POSTS[4]]]
    reward = scorer.held_out(rows, drafts)
    one = [
        [scorer.scorer.score(Request.from_row(r), d) for d in ds] for r, ds in zip(rows, drafts, strict=True)
    ]
    assert reward["values"] == pytest.approx([sum(v) / 3 for v in one])
    assert reward["mean"] == pytest.approx(sum(map(sum, one)) / 6) and (reward["n"], reward["draws"]) == (
        2,
        3,
    )
    forms = [
        scorer.scorer.parts(Request.from_row(r), d)["form"]
        for r, ds in zip(rows, drafts, strict=True)
        for d in ds
    ]
    assert reward["parts"]["form"] == pytest.approx(sum(forms) / 6)
