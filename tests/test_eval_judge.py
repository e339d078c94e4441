"""The pairwise judge asks each pair in both orders: a judge that only follows position cannot crown
either model, so identical replies always come out as ties."""

import pytest


@pytest.mark.llama
def test_identical_replies_are_ties_whatever_the_judge_prefers():
    pytest.importorskip("llama_cpp")
    from localft.eval.judge import judge_pairs
    from localft.plan.catalog import embedded_gguf_path

    prompts = ["Name a fruit.", "Say hello."]
    replies = ["An apple.", "Hello!"]
    judged = judge_pairs(embedded_gguf_path(), prompts, replies, list(replies))
    assert judged["verdicts"] == ["tie", "tie"]
    assert judged["score"] == {"base": 0.5, "tuned": 0.5}
