"""Rewards from localft's own evaluations (localft.eval.rewards), on the sample LinkedIn export's
real splits: the person's held-out posts earn more style and form reward than another person's
kind of text, a copied passage is punished, JSON and labels are scored against the data's reply,
and a user's reward is loaded only when named and stops the run, named, when it fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from localft.config import DataSpec
from localft.data.dataset import build_dataset
from localft.errors import ConfigError
from localft.eval.rewards import (
    Request,
    RewardFailed,
    RunData,
    Scorer,
    copied,
    form,
    json_fields,
    label,
    style,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "linkedin-export.zip"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "data"
    build_dataset(DEMO, DataSpec(), folder)
    rows = {
        s: [json.loads(line) for line in (folder / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
        for s in ("train", "valid", "test")
    }
    data = RunData.from_rows(rows["train"], rows["valid"])
    return data, [Request.from_row(r) for r in rows["test"]], rows["train"]


def _others() -> list[str]:
    """Another kind of text: the sample emails (short, no hashtags, one line)."""
    lines = (ROOT / "examples" / "emails.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:15]]


def test_the_persons_held_out_posts_earn_more_style_and_form(demo):
    data, requests, _ = demo
    own = [r.reference for r in requests]
    for reward in (style, form):
        mine = sum(reward(requests[0], t, data) for t in own) / len(own)
        theirs = sum(reward(requests[0], t, data) for t in _others()) / len(own)
        assert mine > theirs + 0.2, (reward.__name__, mine, theirs)
        assert 0.0 <= min(reward(requests[0], t, data) for t in own + _others()) <= 1.0


def test_a_copied_passage_is_punished(demo):
    data, requests, train_rows = demo
    post = max((r["messages"][-1]["content"] for r in train_rows), key=lambda p: len(p.split()))
    passage = " ".join(post.split()[: data.copy_words + 2])
    assert copied(requests[0], f"Fresh opening words here. {passage}", data) == -1.0
    assert copied(requests[0], " ".join(post.split()[:8]), data) == 0.0  # a short shared run is chance
    assert all(copied(requests[0], t, data) == 0.0 for t in _others())  # another text shares no passage


def test_the_copy_penalty_is_relative_to_the_persons_own_held_out_posts(demo):
    """The sample export's person reuses sentences: their held-out posts share 15-53 words with
    their training posts, so a fixed 12-word limit punished most of their own new posts. The limit
    is what 9 in 10 of those share, and their own test posts now mostly go unpunished."""
    data, requests, train_rows = demo
    fixed = RunData.from_rows(train_rows)  # no held-out posts: the leak check's 12 words
    assert fixed.copy_words == 12 and data.copy_words > 30
    own = [r.reference for r in requests]
    punished = [sum(copied(requests[0], t, d) < 0 for t in own) for d in (fixed, data)]
    assert punished[0] >= len(own) - 1 and punished[1] <= len(own) // 5, punished
    assert RunData.from_rows(train_rows, train_rows[:5]).copy_words >= 12  # floor, however much is shared


def test_json_and_label_rewards_compare_with_the_datas_reply():
    request = Request([{"role": "user", "content": "Extract the sender and the date."}],
                      '{"sender": "Ana", "date": "2026-03-14"}')  # fmt: skip
    scorer = Scorer.for_task("json", RunData([]))
    assert scorer.score(request, '{"sender": "ana", "date": "2026-03-14"}') == pytest.approx(1.5)
    assert json_fields(request, '{"sender": "Ana", "date": "14 March"}', RunData([])) == 0.5
    assert scorer.score(request, 'Sure! {"sender": "Ana"}') == 0.0  # not strict JSON: nothing
    request = Request([{"role": "user", "content": "Label this review."}], "neutral")
    assert label(request, " Neutral\n", RunData([])) == 1.0 and label(request, "positive", RunData([])) == 0.0


def test_weights_from_the_spec_replace_the_tasks(demo):
    data, requests, _ = demo
    text = requests[0].reference
    only_form = Scorer.for_task("style", data, {"form": 2.0})
    assert only_form.score(requests[0], text) == pytest.approx(2 * form(requests[0], text, data))
    with pytest.raises(ConfigError, match="unknown reward fluency"):
        Scorer.for_task("style", data, {"fluency": 1.0})


USER_REWARD = """
import math
CALLS = []

def score(request, draft, data):
    return float(len(draft) < 300)

def broken(request, draft, data):
    raise KeyError("tone")

def nan(request, draft, data):
    return math.nan
"""


def test_a_users_reward_loads_only_when_named_and_fails_by_name(tmp_path, demo):
    data, requests, _ = demo
    path = tmp_path / "my_rewards.py"
    path.write_text(USER_REWARD, encoding="utf-8")
    Scorer.for_task("style", data)
    assert "localft_user_reward_my_rewards" not in sys.modules  # never imported unless named
    scorer = Scorer.for_task("style", data, {"user": 1.0}, user=f"{path}:score")
    assert scorer.score_group(requests[0], ["short", "x" * 400]) == [1.0, 0.0]
    with pytest.raises(RewardFailed, match=r"^reward user raised KeyError: 'tone'$"):
        Scorer.for_task("style", data, user=f"{path}:broken").score(requests[0], "a draft")
    with pytest.raises(RewardFailed, match="reward user returned nan"):
        Scorer.for_task("style", data, user=f"{path}:nan").score(requests[0], "a draft")
    for target, why in ((f"{path}", "path/to/file.py:function"), (f"{tmp_path}/none.py:score", "does not exist"),
                        (f"{path}:missing", "has no function missing")):  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            Scorer.for_task("style", data, user=target)
