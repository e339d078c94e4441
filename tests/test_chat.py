"""localft chat: the GGUF's own template rendered in a sandbox, streaming, history, stop, and the REPL."""

from __future__ import annotations

import json
import threading

import pytest

from localft.chat.run_chat import ChatModel
from localft.chat.session import ChatSession
from localft.chat.template import render_chat
from localft.cli.chat import find_chat_model
from localft.config import TrainSpec
from localft.errors import ExportError, RunError
from localft.export.gguf import convert_folder
from localft.run.folder import new_run


@pytest.fixture(scope="module")
def tiny_gguf(tiny_models, tmp_path_factory):
    return convert_folder(tiny_models("llama"), tmp_path_factory.mktemp("chat") / "tiny-F16.gguf", "F16").path


def test_template_rendering_is_sandboxed():
    messages = [{"role": "user", "content": "hi"}]
    assert (
        render_chat("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}", messages)
        == "[user]hi"
    )
    with pytest.raises(ExportError, match="chat template failed"):
        render_chat("{{ messages.append({'role': 'system'}) }}", messages)  # no mutation inside the sandbox
    with pytest.raises(ExportError, match="unsafe"):
        render_chat("{{ ''.__class__.__mro__ }}", messages)  # no reaching into Python internals


def test_session_streams_keeps_history_stops_and_saves(tiny_gguf, tmp_path):
    session = ChatSession(tiny_gguf, system="Be brief.", temperature=0.0, max_tokens=6)
    try:
        pieces = list(session.stream("Hello there"))
        assert pieces and session.last.finish_reason == "length" and session.last.tokens <= 6
        assert session.messages == [
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "".join(pieces)},
        ]
        again = session.reply("And again?")
        assert again and again == session.messages[3]["content"] and len(session.messages) == 4

        session.max_tokens = 40
        stream = session.stream("Interrupt me")
        got = [next(stream), next(stream), next(stream)]
        # Stopped after token 3 (from another thread, as the stop key does): no token follows it.
        stopper = threading.Thread(target=session.stop)
        stopper.start()
        stopper.join()
        rest = list(stream)
        assert session.last.finish_reason == "interrupted" and session.last.tokens == 3 and rest == []
        assert session.messages[-1]["content"] == "".join(got + rest)

        saved = json.loads(session.save(tmp_path / "chat.json").read_text())
        assert saved["messages"][0] == {"role": "system", "content": "Be brief."}
        session.reset()
        assert session.messages == [] and session.conversation() == [
            {"role": "system", "content": "Be brief."}
        ]
    finally:
        session.close()


def test_foreign_gguf_loads_only_on_request():
    from localft.plan.catalog import embedded_gguf_path

    with pytest.raises(ExportError, match="not made by localft"):
        ChatSession(embedded_gguf_path())
    session = ChatSession(embedded_gguf_path(), allow_foreign=True, temperature=0.0, max_tokens=4)
    try:
        assert session.reply("Hi")
    finally:
        session.close()


def test_find_gguf_prefers_a_quantized_file_of_a_run():
    run = new_run(TrainSpec())
    with pytest.raises(RunError, match="localft export"):
        find_chat_model(str(run.path))
    run.gguf_dir.mkdir()
    for adapter in (f"{run.id}-lora-F32.gguf", "adapter.gguf"):  # LoRA adapters are no model
        (run.gguf_dir / adapter).write_bytes(b"GGUF")
    with pytest.raises(RunError, match="localft export"):
        find_chat_model(run.id)
    for quant in ("F16", "Q4_K_M", "Q8_0"):
        (run.gguf_dir / f"{run.id}-{quant}.gguf").write_bytes(b"GGUF")
    assert find_chat_model(run.id) == ChatModel(run.gguf_dir / f"{run.id}-Q4_K_M.gguf")


def test_chat_command_repl(tiny_gguf, tmp_path, capsys):
    import typer
    from typer.testing import CliRunner

    from localft.cli.chat import chat_command

    app = typer.Typer()
    app.command()(chat_command)
    saved = tmp_path / "talk.json"
    lines = ["/system Answer in one word.", "Hello", "/reset", f"/save {saved}", "/quit"]
    result = CliRunner().invoke(
        app, [str(tiny_gguf), "--temperature", "0", "--max-tokens", "4"], input="\n".join(lines) + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "history cleared" in result.output and "tok/s" in result.output
    assert json.loads(saved.read_text())["messages"] == [{"role": "system", "content": "Answer in one word."}]
    from tests.test_cli import run_cli

    code, out, err = run_cli(capsys, "chat", str(tmp_path / "nope.gguf"))  # printed once, by `localft`
    assert code == 2 and err == f"error: {tmp_path / 'nope.gguf'} does not exist\n" and out == ""


def test_a_template_without_a_system_role_gets_the_system_prompt_in_the_first_user_turn(
    tiny_models, tmp_path
):
    """Gemma 2's template raises on a system message: the GGUF chat folds it as training did."""
    import shutil

    from tests.real_material import template

    folder = tmp_path / "gemma-like"
    shutil.copytree(tiny_models("llama"), folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = template("google-gemma-2-2b-it")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    gguf = convert_folder(folder, tmp_path / "gemma-like-F16.gguf", "F16").path
    session = ChatSession(gguf, system="Answer in French.", temperature=0.0, max_tokens=2)
    try:
        session.reply("Hello")  # Gemma 2's template would raise on the system message itself
        assert session.conversation()[0] == {"role": "user", "content": "Answer in French.\n\nHello"}
        assert session.history()[0] == {"role": "system", "content": "Answer in French."}
    finally:
        session.close()


def test_the_chat_screen_starts_from_the_runs_system_prompt_and_the_cli_defaults():
    import asyncio

    from localft.chat.run_chat import run_chat_spec
    from localft.config import ChatSpec
    from localft.tui.app import LocalftApp
    from localft.tui.screens.chat import ChatScreen
    from tests.tui_support import MACHINE, make_run

    run = make_run(events=None)
    system = "You are Maya Lindqvist, writing LinkedIn posts."
    run.data_dir.mkdir()
    row = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": "Write a post."},
                        {"role": "assistant", "content": "Ship small things."}]}  # fmt: skip
    run.split_path("train").write_text(json.dumps(row) + "\n")

    async def check() -> ChatSpec:
        app = LocalftApp(machine=MACHINE, attach=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.push_screen(ChatScreen(run_path=run.path))
            await pilot.pause()
            labels = [str(label.content) for label in app.screen.query(".chat-label")]
            assert labels == ["system", "temp", "top_p", "max tokens"]
            return app.screen.settings()

    shown = asyncio.run(check())
    assert shown == run_chat_spec(run) == ChatSpec(system=system)  # what `localft chat RUN` uses
