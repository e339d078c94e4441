"""Chatting with a run trained on an Ollama model and exported adapter-only: llama.cpp loads the
user's own base file (the embedded model's real GGUF in a real store layout) with the run's
adapter.gguf, in `localft chat RUN` and on the Chat screen, feedback and its round included."""

from __future__ import annotations

import asyncio
import json

import pytest

from localft.chat.feedback import feedback_path
from localft.chat.run_chat import base_chat_model, run_chat_model, run_chat_spec
from localft.run.runner import stop_worker, wait_worker
from tests.command_support import localft
from tests.local_store import train_short_run
from tests.test_local_models import stores  # noqa: F401  (the fixture)

REQUEST = "Write a short post about my week."


def greedy(model, spec, lora: bool = True) -> str:
    """A greedy reply of the model (base + adapter, or the base alone) to REQUEST."""
    session = model.open(spec, allow_foreign=not lora, temperature=0.0, max_tokens=24)
    try:
        return session.reply(REQUEST)
    finally:
        session.close()


@pytest.mark.slow
def test_a_run_on_an_ollama_model_chats_through_its_adapter_on_the_users_file(stores, tmp_path):  # noqa: F811
    run = train_short_run("ollama:smollm2:135m")
    # --out: the adapter export goes there, the run's gguf/ is left alone.
    out = tmp_path / "for-ollama"
    elsewhere = localft("export", run.id, "--no-verify", "--out", out, timeout=600)
    assert elsewhere.returncode == 0, elsewhere.stdout + elsewhere.stderr
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "adapter.gguf", "export.json"]
    assert "ADAPTER ./adapter.gguf" in (out / "Modelfile").read_text() and not run.gguf_dir.exists()
    # Verified on the user's Q4_1 file and, for reference, on an F16 copy of it.
    exported = localft("export", run.id, timeout=900)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    print(exported.stdout)
    quantized, reference = json.loads((run.gguf_dir / "export.json").read_text())["files"]
    assert quantized["quant"] == "Q4_1 base + adapter" and "vs_f16_base" in quantized["parity"]
    assert reference["parity"]["passed"] and reference["parity"]["top1"] >= 0.99, reference

    model = run_chat_model(run)
    assert model.gguf.parent == stores["ollama"] / "blobs"  # the user's file itself, no copy
    assert model.adapter == run.gguf_dir / "adapter.gguf" and model.name == "smollm2:135m + adapter.gguf"
    spec = run_chat_spec(run)
    tuned, base = greedy(model, spec), greedy(base_chat_model(run), spec, lora=False)
    print(f"tuned: {tuned!r}\nbase:  {base!r}")
    assert tuned and tuned != base  # the adapter is applied: llama.cpp's greedy reply moved

    # `localft chat RUN`: no --any-gguf (the adapter is localft's), the adapter's reply, feedback kept.
    chat = localft(
        "chat", run.id, "--temperature", "0", "--max-tokens", "24",
        input=f"{REQUEST}\n/good\n/two {REQUEST}\n/pick 2\n/quit\n", timeout=300,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stdout + chat.stderr
    assert "smollm2:135m + adapter.gguf" in chat.stdout and "marked good" in chat.stdout
    assert " ".join(tuned.split()) in " ".join(chat.stdout.split()), chat.stdout
    kinds = [json.loads(line)["kind"] for line in feedback_path(run.path).read_text().splitlines()]
    picked = "kept draft 2" in chat.stdout  # else the two drafts were the same: nothing recorded
    assert kinds == ["rating", "pick"] if picked else kinds == ["rating"], chat.stdout

    # `localft eval RUN`: the user's file alone is the base, the same file + adapter.gguf the tuned model.
    evaluated = localft("eval", run.id, "--samples", "2", "--max-tokens", "16", timeout=600)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    report = json.loads((run.eval_dir / "report.json").read_text())
    assert report["base_gguf"] == str(model.gguf) and report["quant"] == "Q4_1"
    assert report["tuned_gguf"] == f"{model.gguf} + {model.adapter}"
    ppl = report["metrics"]["perplexity"]
    assert ppl["tuned"] != ppl["base"], ppl  # the adapter was applied when scoring

    reply, base_reply, round_run = asyncio.run(chat_screen(run))
    assert " ".join(tuned.split()) in " ".join(reply.split()) and base_reply != reply
    spec = round_run.read_spec()
    assert spec.model == "ollama:smollm2:135m" and spec.start_adapter == str(run.adapter_dir.resolve())


async def chat_screen(run):
    """The Chat screen on the run: the adapter's reply beside the base's, two drafts and a pick,
    then "Train on feedback" starts a round on the same Ollama model, followed to its end."""
    from textual.widgets import Checkbox, Input, Static

    from localft.run.folder import RunDir
    from localft.tui.app import LocalftApp
    from localft.tui.screens.chat import ChatScreen, Transcript
    from localft.tui.screens.training import TrainingScreen
    from tests.tui_support import MACHINE, wait_until

    app = LocalftApp(machine=MACHINE, attach=False)
    started: list[RunDir] = []
    try:
        async with app.run_test(size=(110, 32)) as pilot:
            await app.push_screen(ChatScreen(run_path=run.path))
            screen = app.screen
            tuned = screen.query_one("#tuned", Transcript)
            assert tuned.border_title == "smollm2:135m + adapter.gguf"
            screen.query_one("#temperature", Input).value = "0"
            screen.query_one("#max_tokens", Input).value = "24"
            screen.query_one("#compare", Checkbox).value = True
            screen.query_one("#prompt", Input).value = REQUEST
            await pilot.press("enter")
            await wait_until(pilot, lambda: not screen.busy, 120)
            reply = screen.sessions["tuned"].history()[-1]["content"]
            base_reply = screen.sessions["base"].history()[-1]["content"]
            assert reply in str(tuned.query_one(Static).content)  # streamed onto the screen

            screen.query_one("#compare", Checkbox).value = False
            screen.query_one("#temperature", Input).value = "1"
            screen.query_one("#prompt", Input).value = "Write about trains."
            await pilot.press("ctrl+t")
            await wait_until(pilot, lambda: screen.query_one("#draft-picks").display, 120)
            await pilot.click("#pick-1")
            await pilot.pause()
            await pilot.click("#train-round")
            await wait_until(pilot, lambda: isinstance(app.screen, TrainingScreen), 120)
            training = app.screen
            started.append(RunDir(training.run.path))
            await wait_until(pilot, lambda: training.view.status == "completed", 600)
            assert app.worker_failures == []
    finally:
        for started_run in started:
            if not wait_worker(started_run, timeout=1):
                stop_worker(started_run, timeout=30)
    return reply, base_reply, started[0]


def test_a_run_whose_base_left_the_store_says_so_in_one_line(stores, capsys):  # noqa: F811
    from localft.config import TrainSpec
    from localft.run.folder import new_run
    from tests.test_cli import run_cli

    run = new_run(TrainSpec(model="ollama:removed:1b"))
    run.gguf_dir.mkdir()
    (run.gguf_dir / "adapter.gguf").write_bytes(b"GGUF")
    code, out, err = run_cli(capsys, "chat", run.id)
    assert code == 2 and out == "" and err.startswith("error: ollama:removed:1b is not in Ollama's store")
    assert len(err.splitlines()) == 1 and "smollm2:135m" in err  # what the store holds instead


def test_adapter_files_beside_a_runs_gguf_are_never_taken_for_its_model(tmp_path):
    """A run's gguf/ may hold adapter.gguf (adapter-only export) and NAME-lora-F32.gguf (--adapter):
    chat and evaluation pick the model file, and `--quant F32` finds no F32 model."""
    from localft.config import TrainSpec
    from localft.errors import ExportError
    from localft.eval.inputs import tuned_gguf_path
    from localft.run.folder import new_run

    run = new_run(TrainSpec(model="embedded"))
    run.gguf_dir.mkdir()
    for name in ("adapter.gguf", f"{run.id}-lora-F32.gguf", f"{run.id}-Q8_0.gguf"):
        (run.gguf_dir / name).write_bytes(b"GGUF")
    model = run.gguf_dir / f"{run.id}-Q8_0.gguf"
    assert run_chat_model(run).gguf == model and run_chat_model(run).adapter is None
    assert tuned_gguf_path(run) == model
    with pytest.raises(ExportError, match="has no F32 GGUF"):
        tuned_gguf_path(run, "F32")
