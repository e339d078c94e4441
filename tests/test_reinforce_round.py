"""A grpo round through the one loop on torch and MLX (a tiny real model, real drafting and rewards):
it trains from a finished SFT run with rewards in its Step events, a reward that raises stops it in
one line naming the reward with the last checkpoint kept, and a worker killed with kill -9 resumes
on the same per-step losses and rewards."""

from __future__ import annotations

import math

import pytest

from localft.errors import RunError
from localft.eval.rewards import RowScorer
from localft.events import Eval, RunStarted, Step, read_events
from localft.train.preference_round import prepare_round
from tests.training import kill_9_after_checkpoint, make_run, train_run

ROUND = dict(steps=4, batch_size=1, learning_rate=5e-3, warmup_steps=0, save_every=2, group_size=4,
             max_draft_tokens=8, schedule="constant", early_stopping_patience=None)  # fmt: skip


def finished_sft(tmp_path_factory, tiny_models, backend: str, n_valid: int = 0):
    spec, run = make_run(tmp_path_factory.mktemp(f"sft-{backend}"), tiny_models("llama"), backend=backend,
                         steps=2, n_valid=n_valid)  # fmt: skip
    train_run(spec, run)
    return run


@pytest.fixture(scope="module")
def source(tmp_path_factory, tiny_models):
    return finished_sft(tmp_path_factory, tiny_models, "torch")


@pytest.mark.mlx
def test_a_grpo_round_trains_on_mlx(tmp_path_factory, tiny_models):
    pytest.importorskip("mlx_lm")
    run = prepare_round(finished_sft(tmp_path_factory, tiny_models, "mlx"), "grpo", overrides=ROUND)
    steps = curve(grpo_train(run))
    assert sorted(steps) == [1, 2, 3, 4]
    assert all(math.isfinite(loss) and math.isfinite(r) for loss, r, _ in steps.values())
    assert any(std > 0 for _, _, std in steps.values())
    assert (run.adapter_dir / "adapter_config.json").is_file()


def grpo_train(run, stop=lambda: False) -> list:
    from localft.events import EventSink
    from localft.run.worker import run_plan
    from localft.train import train

    with EventSink(run.events_path) as sink:
        train(run, run_plan(run), sink, stop, scorer=RowScorer.for_run(run, run.read_spec()))
    return read_events(run.events_path)


def curve(events) -> dict[int, tuple[float, float, float]]:
    return {e.step: (e.loss, e.reward, e.reward_std) for e in events if isinstance(e, Step)}


def kls(events) -> dict[int, float | None]:
    return {e.step: e.kl for e in events if isinstance(e, Step)}


@pytest.mark.parametrize("backend", ["torch", pytest.param("mlx", marks=pytest.mark.mlx)])
def test_a_kl_term_to_the_start_adapter_trains_and_is_logged(tmp_path_factory, tiny_models, source, backend):
    """beta 0.04: each step logs the drafts' KL to the start adapter; it grows once the adapter
    moves (a high learning rate, so four steps move it), and the run without beta logs none."""
    if backend == "mlx":
        pytest.importorskip("mlx_lm")
    sft = source if backend == "torch" else finished_sft(tmp_path_factory, tiny_models, "mlx")
    run = prepare_round(sft, "grpo", overrides={**ROUND, "beta": 0.04, "learning_rate": 2e-2})
    events = grpo_train(run)
    kl = kls(events)
    assert sorted(kl) == [1, 2, 3, 4] and all(
        v is not None and math.isfinite(v) and v >= 0 for v in kl.values()
    )
    assert kl[1] < 1e-3 < max(kl[2], kl[3], kl[4]), kl  # step 1 drafts from the start itself
    assert "KL to the start adapter x 0.04" in run.events_path.read_text()
    if backend == "torch":
        plain = prepare_round(sft, "grpo", overrides={**ROUND, "learning_rate": 2e-2})
        assert set(kls(grpo_train(plain)).values()) == {None}


def test_a_kl_round_on_fully_fine_tuned_weights_keeps_every_weight_as_its_reference(
    tmp_path_factory, tiny_models
):
    """weights=full (an HF folder, not an adapter): the round starts from every weight the SFT run
    trained (its step-0 validation loss is the SFT run's last), keeps them as the KL term's
    reference, moves away from them and logs the KL; the source run's weights stay intact."""
    import torch
    from safetensors.torch import load_file

    spec, sft = make_run(tmp_path_factory.mktemp("sft-full"), tiny_models("llama"), steps=2, weights="full")
    sft_loss = [e.val_loss for e in train_run(spec, sft) if isinstance(e, Eval)][-1]
    start = {k: v.clone() for k, v in load_file(next(sft.adapter_dir.glob("*.safetensors"))).items()}
    run = prepare_round(sft, "grpo", overrides={**ROUND, "beta": 0.04, "learning_rate": 2e-2})
    assert run.read_spec().weights == "full"
    events = grpo_train(run)
    assert [e.val_loss for e in events if isinstance(e, Eval) and e.step == 0] == [
        pytest.approx(sft_loss, rel=1e-5)
    ]
    kl = kls(events)
    assert sorted(kl) == [1, 2, 3, 4] and kl[1] < 1e-3 < max(kl[2], kl[3], kl[4]), kl
    after = load_file(next(sft.adapter_dir.glob("*.safetensors")))
    assert all(torch.equal(start[k], after[k]) for k in start)  # the source run's weights untouched


def test_a_grpo_round_drafts_scores_and_trains(source):
    run = prepare_round(source, "grpo", overrides=ROUND)
    assert run.read_spec().method == "grpo" and (run.path / "plan.json").is_file()
    steps = curve(grpo_train(run))
    assert sorted(steps) == [1, 2, 3, 4]
    assert all(math.isfinite(loss) and math.isfinite(r) for loss, r, _ in steps.values())
    assert any(std > 0 for _, _, std in steps.values())  # the drafts of a group differ in reward
    assert (run.adapter_dir / "adapter_config.json").is_file()


@pytest.mark.parametrize("backend", ["torch", pytest.param("mlx", marks=pytest.mark.mlx)])
def test_a_round_scores_held_out_requests_and_keeps_its_best_rewarded_adapter(tmp_path_factory, tiny_models,
                                                                               backend):  # fmt: skip
    """With a validation split, each evaluation drafts one greedy reply per validation request and
    scores it with the round's rewards: the Eval events carry that held-out reward beside the
    validation loss, the run's end names the best, and the exported adapter is that step's."""
    if backend == "mlx":
        pytest.importorskip("mlx_lm")
    from localft.events import Eval, Finished, Log
    from localft.run.state import RunState

    sft = finished_sft(tmp_path_factory, tiny_models, backend, n_valid=3)
    run = prepare_round(sft, "grpo", overrides={**ROUND, "eval_every": 2, "learning_rate": 2e-2})
    events = grpo_train(run)
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e.step for e in evals] == [0, 2, 4]  # 0: the start adapter, before any step
    assert all(0 <= e.reward <= 1.5 and e.reward_std >= 0 and math.isfinite(e.val_loss) for e in evals)
    assert "held-out reward on 3 validation requests" in " ".join(
        e.message for e in events if isinstance(e, Log)
    )
    best = max(evals, key=lambda e: e.reward)  # the first of equal rewards stays the best
    state = RunState()
    for event in events:
        state.apply(event)
    assert (state.best_step, state.best_reward) == (best.step, best.reward)
    assert state.held_out_rewards == [e.reward for e in evals]
    assert not [e for e in events if isinstance(e, Finished)]  # the worker writes it, not train()
    kept = {f.name: f.read_bytes() for f in run.adapter_dir.iterdir()}
    assert kept == {f.name: f.read_bytes() for f in run.best_adapter_dir.iterdir()}


def test_a_round_stops_early_when_its_held_out_reward_stops_rising(tmp_path_factory, tiny_models, tmp_path):
    """A reward that never changes: the start's evaluation (step 0) is the best, the one after
    step 2 is no better, and with patience 1 the round stops there, at 2 of its 8 steps, and
    exports the start adapter itself."""
    from pathlib import Path

    from safetensors.torch import load_file

    user = tmp_path / "flat_reward.py"
    user.write_text("def score(request, draft, data):\n    return 0.5\n")
    sft = finished_sft(tmp_path_factory, tiny_models, "torch", n_valid=2)
    overrides = {**ROUND, "steps": 8, "eval_every": 2, "early_stopping_patience": 1, "reward": f"{user}:score",
                 "reward_weights": {"user": 1.0}}  # fmt: skip
    run = prepare_round(sft, "grpo", overrides=overrides)
    events = grpo_train(run)
    assert [(e.step, e.reward) for e in events if isinstance(e, Eval)] == [(0, 0.5), (2, 0.5)]
    assert max(e.step for e in events if isinstance(e, Step)) == 2
    assert "early-stopped (1 evaluations without improvement; best step 0)" in run.events_path.read_text()
    start = Path(run.read_spec().start_adapter)
    exported = run.adapter_dir / "adapter_model.safetensors"
    assert load_file(exported).keys() and all(
        (load_file(exported)[k] == v).all() for k, v in load_file(start / "adapter_model.safetensors").items()
    )


def test_the_draft_limit_follows_the_persons_replies_unless_set():
    from localft.train.reinforce_loop import MIN_DRAFT_TOKENS, Prompt, usual_reply_tokens

    def prompts(lengths):
        return [Prompt({}, [1], [2], n) for n in lengths]

    assert usual_reply_tokens(prompts(range(1, 101)), 1024) == 91  # 9 in 10 replies fit
    assert usual_reply_tokens(prompts([300] * 5), 512) == 256  # half the sequence stays the prompt's
    assert usual_reply_tokens(prompts([3, 4]), 512) == MIN_DRAFT_TOKENS
    assert usual_reply_tokens([], 512) == MIN_DRAFT_TOKENS


def test_a_reward_that_raises_stops_the_run_naming_it(source, tmp_path):
    user = tmp_path / "bad_reward.py"
    user.write_text("def score(request, draft, data):\n    raise ValueError('no opinion')\n")
    run = prepare_round(source, "grpo", overrides={**ROUND, "reward": f"{user}:score"})
    with pytest.raises(RunError) as failed:
        grpo_train(run)
    message = str(failed.value)
    assert "reward user raised ValueError: no opinion" in message and "\n" not in message
    assert "step 1" in message and not list(run.checkpoints_dir.glob("step-*"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "beta"),
    [("torch", None), ("torch", 0.04), pytest.param("mlx", None, marks=pytest.mark.mlx),
     pytest.param("mlx", 0.04, marks=pytest.mark.mlx)],
)  # fmt: skip
def test_kill_9_resumes_on_the_same_losses_and_rewards(tmp_path_factory, tiny_models, backend, beta):
    """With a KL term the resumed run's reference is still the start adapter (kept before the
    checkpoint's weights load), so the KL of each step comes back too."""
    if backend == "mlx":
        pytest.importorskip("mlx_lm")
    sft = finished_sft(tmp_path_factory, tiny_models, backend)
    overrides = {**ROUND, "beta": beta} if beta else ROUND
    whole = prepare_round(sft, "grpo", overrides=overrides)
    expected_events = grpo_train(whole)
    expected = curve(expected_events)

    killed = prepare_round(sft, "grpo", overrides=overrides)
    assert kill_9_after_checkpoint(killed, step=2) is not None
    events = grpo_train(killed)
    last_start = max(i for i, e in enumerate(events) if isinstance(e, RunStarted))
    assert events[last_start].resumed_from == 2
    resumed = curve(events[last_start:])
    assert sorted(resumed) == [3, 4]
    for step, (loss, reward, std) in resumed.items():
        assert loss == pytest.approx(expected[step][0], rel=1e-4, abs=1e-6)
        assert reward == pytest.approx(expected[step][1], abs=1e-9)
        assert std == pytest.approx(expected[step][2], abs=1e-9)
    resumed_kl, expected_kl = kls(events[last_start:]), kls(expected_events)
    for step, kl in resumed_kl.items():
        assert (kl is None) == (beta is None)
        if beta:
            assert kl == pytest.approx(expected_kl[step], rel=1e-3, abs=1e-7)


@pytest.mark.slow
def test_a_reward_failing_after_a_checkpoint_keeps_it_and_the_worker_says_one_line(source, tmp_path):
    """Through the real worker process: the first two steps' 8 drafts score, the 9th returns NaN."""
    import subprocess
    import sys

    from localft.events import Finished

    user = tmp_path / "tired_reward.py"
    count = tmp_path / "calls"
    user.write_text(
        "from pathlib import Path\n"
        f"COUNT = Path({str(count)!r})\n"
        "def score(request, draft, data):\n"
        "    n = int(COUNT.read_text()) + 1 if COUNT.exists() else 1\n"
        "    COUNT.write_text(str(n))\n"
        "    return float('nan') if n > 8 else 1.0\n"
    )
    run = prepare_round(source, "grpo", overrides={**ROUND, "reward": f"{user}:score"})
    worker = subprocess.run([sys.executable, "-m", "localft.run.worker", str(run.path)], capture_output=True,
                            text=True, timeout=240)  # fmt: skip
    assert worker.returncode == 2, worker.stderr[-2000:]
    finished = [e for e in read_events(run.events_path) if isinstance(e, Finished)][-1]
    assert finished.error == (
        "reward user returned nan (it must be a finite number) at step 3; the last checkpoint is step 2"
    )
    assert run.latest_checkpoint().name.endswith("2")


def test_the_train_command_plans_a_grpo_round_and_refuses_what_it_cannot_do(capsys, source):
    from tests.test_cli import run_cli

    capsys.readouterr()
    code, out, err = run_cli(capsys, "train", "--method", "grpo", "--from", str(source.path), "--plan")
    assert code == 0 and "memory" in out.lower(), err
    code, _, err = run_cli(capsys, "train", "--method", "grpo", "--from", str(source.path), "--pairs", "self")
    assert (
        code == 2
        and err == "error: a grpo round drafts its own completions of the run's requests: leave out --pairs\n"
    )
    code, out, err = run_cli(
        capsys, "train", "--method", "grpo", "--from", str(source.path), "--set", "beta=0.04", "--plan"
    )
    assert code == 0 and "memory: fits" in out, err  # a KL term is planned, not refused
    code, _, err = run_cli(
        capsys, "train", "--method", "grpo", "--from", str(source.path), "--set", "group_size=2"
    )
    assert code == 2 and "group_size" in err and err.count("\n") == 1
    code, _, err = run_cli(
        capsys, "train", "--method", "grpo", "--from", str(source.path), "--set", "reward=nope.py:f"
    )
    assert code == 2 and err.startswith("error: reward 'nope.py:f': ") and "does not exist" in err
    code, _, err = run_cli(
        capsys, "train", "--method", "grpo", "--from", str(source.path), "--set", "reward_weights.tone=1"
    )
    assert code == 2 and err.startswith("error: unknown reward tone; known: copied, form")


def test_the_memory_estimate_counts_the_group_of_drafts(source):
    from localft.config import TrainSpec
    from localft.plan.memory import estimate_memory

    model = source.read_spec().model
    sft = estimate_memory(TrainSpec(model=model, method="sft"), model)
    for group in (4, 8):
        grpo = estimate_memory(TrainSpec(model=model, method="grpo", group_size=group), model)
        assert grpo.activations == group * sft.activations
    plain = estimate_memory(TrainSpec(model=model, method="grpo"), model)
    kl = estimate_memory(TrainSpec(model=model, method="grpo", beta=0.04), model)
    assert kl.reference == kl.lora > 0 and kl.total == plain.total + kl.lora  # the start adapter's copy


def test_old_event_files_still_read_and_a_step_keeps_its_rewards(tmp_path):
    from pathlib import Path

    from localft.events import EventSink

    old = read_events(Path(__file__).parent / "fixtures" / "events" / "tiny-run.jsonl")
    assert [e for e in old if isinstance(e, Step)] and all(
        e.reward is None for e in old if isinstance(e, Step)
    )
    with EventSink(tmp_path / "events.jsonl") as sink:
        sink(Step(1, 2, 0.5, 1e-4, 10, 5.0, 1, reward=0.25, reward_std=0.5))
    (step,) = read_events(tmp_path / "events.jsonl")
    assert (step.reward, step.reward_std) == (0.25, 0.5)


@pytest.mark.slow
def test_a_grpo_round_exports_to_gguf_with_the_runs_export_command(source, capsys):
    from gguf import GGUFReader

    from localft.cli.main import main

    run = prepare_round(source, "grpo", overrides={**ROUND, "steps": 2})
    assert sorted(curve(grpo_train(run))) == [1, 2]
    code = main(["export", run.id, "--quant", "Q8_0", "--no-verify"])
    assert code in (0, None), capsys.readouterr().out
    gguf = next(run.gguf_dir.glob("*Q8_0.gguf"))
    assert len(GGUFReader(gguf).tensors) > 0


def test_the_end_of_a_round_names_its_best_held_out_reward():
    from localft.run.state import describe
    from localft.run.worker import Tracker

    tracker = Tracker(sink=lambda event: None)
    for event in (Eval(2, 3.0, reward=0.4, reward_std=0.1), Eval(4, 2.5, reward=0.6, reward_std=0.2),
                  Step(6, 6, 0.1, 1e-4, 10, 5.0, 1), Eval(6, 2.0, reward=0.5, reward_std=0.1)):  # fmt: skip
        tracker.note(event)
    done = tracker.finished("completed")
    assert (done.step, done.best_step, done.best_reward, done.best_val_loss) == (6, 4, 0.6, 2.5)
    assert describe(done) == "run completed at step 6; best held-out reward 0.600 at step 4"
    assert describe(Eval(4, 2.5, reward=0.6, reward_std=0.2)) == (
        "step 4: validation loss 2.5000, held-out reward 0.600 ± 0.200"
    )
