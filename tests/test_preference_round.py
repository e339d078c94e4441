"""A preference round after a finished run: a new run that starts from the run's adapter, with
pairs collected from the chat's feedback (or a file), planned on those pairs; what is missing is
one line and leaves no run behind."""

from __future__ import annotations

import json

import pytest

from localft.chat.feedback import FeedbackLog, feedback_path
from localft.config import TrainSpec
from localft.data.pairs import pairs_path, read_preferences
from localft.errors import DataError, RunError
from localft.plan.planner import read_plan
from localft.run.folder import list_runs, new_run
from localft.train.preference_round import prepare_round

SYSTEM = {"role": "system", "content": "You are Maya."}


def _prompt(i):
    return [SYSTEM, {"role": "user", "content": f"Write post {i}."}]


@pytest.fixture
def finished_run(tiny_models):
    run = new_run(TrainSpec(model=str(tiny_models("llama")), batch_size=2, max_seq_len=128), name="sft")
    run.data_dir.mkdir()
    row = {"messages": [*_prompt(0), {"role": "assistant", "content": "Ship small things."}]}
    for split in ("train", "valid", "test"):
        run.split_path(split).write_text(json.dumps(row) + "\n")
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    return run


def test_a_dpo_round_from_the_chats_feedback(finished_run):
    log = FeedbackLog(feedback_path(finished_run.path))
    for i in range(11):
        log.pick(_prompt(i), f"Mine, number {i}.", f"Generic text {i}.")
    log.rate(_prompt(20), "Short and mine.", True)
    log.rate(_prompt(20), "Long and not mine at all.", False)
    log.rate(_prompt(21), "Only a good mark.", True)
    run = prepare_round(finished_run, "dpo", overrides={"beta": 0.2})
    spec = run.read_spec()
    assert (spec.method, spec.beta, spec.pairs) == ("dpo", 0.2, "feedback")
    assert spec.start_adapter == str(finished_run.adapter_dir.resolve()) and spec.learning_rate == 5e-5
    train, valid = read_preferences(pairs_path(run, "train")), read_preferences(pairs_path(run, "valid"))
    # 14 judgements: every 10th is held out (the 10th pick); the good and bad mark of one request pair up.
    assert len(valid) == 1 and valid[0].chosen == "Mine, number 9."
    assert (
        len(train) == 11 and train[-1].chosen == "Short and mine." and train[-1].rejected.startswith("Long")
    )
    plan = read_plan(run.path)
    assert plan.train_examples == 11 and plan.steps == 6  # one epoch of 11 pairs, 2 a step
    assert run.split_path("test").is_file()  # the source's splits come along for evaluation
    events = [json.loads(x)["message"] for x in run.events_path.read_text().splitlines()]
    assert events[0] == f"dpo round from run {finished_run.id}: 11 training and 1 held-out pairs"

    kto = prepare_round(finished_run, "kto")
    assert len(read_preferences(pairs_path(kto, "train"))) == 2 * 10 + 3  # each pick: a good and a bad


def test_a_round_from_a_pairs_file_gets_the_runs_system_prompt(finished_run, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "Write post 1.", "chosen": "Mine.", "rejected": "Theirs."}) + "\n")
    run = prepare_round(finished_run, "simpo", pairs=str(path))
    (pair,) = read_preferences(pairs_path(run, "train"))
    assert pair.prompt == _prompt(1)


def test_what_is_missing_is_one_line_and_leaves_no_run(finished_run):
    before = {r.id for r in list_runs()}
    with pytest.raises(
        DataError,
        match=f"run {finished_run.id} has no feedback yet; rate replies in `localft chat {finished_run.id}`",
    ):
        prepare_round(finished_run, "dpo")
    FeedbackLog(feedback_path(finished_run.path)).rate(_prompt(1), "Only good.", True)
    with pytest.raises(DataError, match="no pairs .* to train dpo on"):
        prepare_round(finished_run, "dpo")
    assert {r.id for r in list_runs()} == before
    (finished_run.adapter_dir / "adapter_config.json").unlink()
    with pytest.raises(RunError, match=f"run {finished_run.id} has no adapter yet"):
        prepare_round(finished_run, "dpo")


def test_a_rounds_eval_report_shows_base_sft_and_tuned_side_by_side():
    from localft.eval.report import render_markdown

    report = {"run": "r", "model": "embedded", "quant": "Q8_0", "test_rows": 3, "generations": 1, "max_tokens": 9,
              "metrics": {"perplexity": {"base": 30.0, "sft": 20.0, "tuned": 18.5},
                          "style_distance": {"base": 2.0, "sft": 1.0, "tuned": 1.25}},
              "samples": [{"prompt": "p", "real": "r", "base": "b", "sft": "s", "tuned": "t"}]}  # fmt: skip
    text = render_markdown(report)
    assert "| Metric | Base | SFT | Tuned | |" in text
    assert "| Test perplexity of the real replies | 30.00 | 20.00 | 18.50 | better |" in text
    assert "**SFT:**\n\n> s" in text


def test_a_grpo_rounds_report_shows_the_reward_of_base_sft_and_the_round():
    from localft.eval.report import render_markdown

    weights = {"style": 1.0, "copied": 1.0, "form": 0.5}
    rewards = {who: {"mean": m, "std": 0.25, "low": m - 0.1, "high": m + 0.1, "n": 8, "weights": weights}
               for who, m in (("base", 0.5), ("sft", 0.75), ("tuned", 0.875))}  # fmt: skip
    report = {"run": "r", "model": "embedded", "quant": "Q8_0", "test_rows": 8, "generations": 8, "max_tokens": 9,
              "metrics": {"reward": {w: r["mean"] for w, r in rewards.items()}}, "rewards": rewards,
              "samples": []}  # fmt: skip
    text = render_markdown(report)
    assert "| Mean reward on held-out requests (grpo's rewards) | 0.500 | 0.750 | 0.875 | better |" in text
    assert (
        "| sft | 0.750 | ± 0.250 | 0.650 to 0.850 | 8 |" in text
        and "style x 1, copied x 1, form x 0.5" in text
    )


def test_the_train_command_says_what_a_round_needs(capsys, finished_run):
    from tests.test_cli import run_cli

    capsys.readouterr()  # the fixture's model-building output
    code, _, err = run_cli(capsys, "train", "--method", "dpo")
    assert code == 2 and err == "error: --method dpo continues a finished run: add --from RUN\n"
    code, _, err = run_cli(capsys, "train", "--from", str(finished_run.path))
    assert code == 2 and "has no feedback yet" in err
    code, _, err = run_cli(capsys, "train")
    assert code == 2 and err.startswith("error: give the data to train on")
