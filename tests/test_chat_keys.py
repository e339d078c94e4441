"""The Chat screen on real GGUFs: the stop key ends a streaming reply, base vs tuned side by side,
the system prompt and sampling fields reach the session; `localft chat --compare` in a terminal."""

from __future__ import annotations

import shutil

import pytest

from localft.atomic import atomic_write_json
from localft.chat.session import ChatSession
from localft.config import TrainSpec
from localft.paths import runs_dir
from localft.plan.catalog import embedded_gguf_path
from localft.run.folder import RunDir
from localft.tui.app import LocalftApp
from localft.tui.screens.chat import ChatScreen
from tests.command_support import localft
from tests.tui_support import MACHINE, wait_until

pytestmark = [pytest.mark.llama, pytest.mark.anyio]
TRAINED_SYSTEM = "You write short LinkedIn posts."


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def tiny_gguf(tiny_models, tmp_path_factory):
    from localft.export.gguf import convert_folder

    return convert_folder(tiny_models("llama"), tmp_path_factory.mktemp("chat") / "tiny-F16.gguf", "F16").path


@pytest.fixture
def run(tiny_gguf) -> RunDir:
    """A run of the embedded model (so the base side is the embedded GGUF) with an exported GGUF
    (the tiny model's) and the system prompt its export recorded."""
    run = RunDir(runs_dir() / "20261201-090000-chat")
    run.path.mkdir(parents=True)
    run.write_spec(TrainSpec(model="embedded", steps=4))
    run.gguf_dir.mkdir()
    shutil.copy(tiny_gguf, run.gguf_dir / f"{run.id}-F16.gguf")
    atomic_write_json(run.gguf_dir / "export.json", {"system_prompt": TRAINED_SYSTEM})
    return run


async def open_chat(pilot, run: RunDir) -> ChatScreen:
    await pilot.app.push_screen(ChatScreen(run_path=run.path))
    await pilot.pause()
    return pilot.app.screen


def fill(chat: ChatScreen, **fields) -> None:
    for name, value in fields.items():
        chat.query_one(f"#{name}").value = value


async def test_the_stop_key_ends_a_streaming_reply(run):
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await open_chat(pilot, run)
        # A reply of up to 1500 tokens (seconds of work) is under way when the key lands.
        fill(chat, temperature="0", max_tokens="1500", prompt="Tell me a long story.")
        await pilot.press("enter")
        tuned = chat.query_one("#tuned")
        await wait_until(pilot, lambda: len(tuned.reply) > 0, timeout=60)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not chat.busy, timeout=60)
        session = chat.sessions["tuned"]
        assert session.last.finish_reason == "interrupted" and session.last.tokens >= 1
        assert session.messages[-1]["role"] == "assistant" and session.messages[-1]["content"]
        assert tuned.turns[-1].endswith(session.messages[-1]["content"][-20:])
        assert app.worker_failures == []


@pytest.mark.slow
async def test_base_vs_tuned_answers_side_by_side(run):
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await open_chat(pilot, run)
        base, tuned = chat.query_one("#base"), chat.query_one("#tuned")
        assert not base.display
        await pilot.press("ctrl+b")
        assert chat.query_one("#compare").value and base.display
        fill(chat, temperature="0", max_tokens="6", prompt="What is the capital of France?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(base.turns) == len(tuned.turns) == 2, timeout=120)
        assert chat.sessions["base"].path == embedded_gguf_path()
        assert chat.sessions["tuned"].path == run.gguf_dir / f"{run.id}-F16.gguf"
        replies = {side: chat.sessions[side].messages[-1]["content"] for side in ("base", "tuned")}
        assert replies["base"] and replies["tuned"] and replies["base"] != replies["tuned"]
        assert base.turns[1] == f"[b]base[/b] {replies['base']}"  # each side shows its own model
        await pilot.press("ctrl+b")
        assert not base.display
        assert app.worker_failures == []


async def test_system_prompt_and_sampling_fields_reach_the_session(run):
    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = await open_chat(pilot, run)
        # Starts from the run's trained system prompt and `localft chat`'s defaults.
        assert chat.query_one("#system").value == TRAINED_SYSTEM
        assert [chat.query_one(f"#{f}").value for f in ("temperature", "top_p", "max_tokens")] == [
            "0.7", "0.95", "512",
        ]  # fmt: skip
        fill(chat, temperature="hot", prompt="Hello")
        await pilot.press("enter")
        await pilot.pause()
        assert "temperature" in [n.message for n in app._notifications][-1] and not chat.sessions
        fill(chat, system="Answer in one word.", temperature="0.5", top_p="0.8", max_tokens="3", prompt="Hi")
        await pilot.press("enter")
        tuned = chat.query_one("#tuned")
        await wait_until(pilot, lambda: len(tuned.turns) == 2, timeout=60)
        session = chat.sessions["tuned"]
        assert (session.system, session.temperature, session.top_p, session.max_tokens) == (
            "Answer in one word.", 0.5, 0.8, 3,
        )  # fmt: skip
        assert session.history()[0] == {"role": "system", "content": "Answer in one word."}
        assert session.last.tokens <= 3 and session.last.finish_reason == "length"


@pytest.mark.slow
def test_chat_compare_shows_the_base_answer_beside_the_tuned_one(tiny_gguf):
    settings = {"temperature": 0.0, "max_tokens": 5}
    expected = {}
    for side, path in (("tuned", tiny_gguf), ("base", embedded_gguf_path())):
        session = ChatSession(path, allow_foreign=True, **settings)
        try:
            expected[side] = session.reply("Hello")
        finally:
            session.close()
    result = localft(
        "chat", tiny_gguf, "--compare", embedded_gguf_path(), "--any-gguf", "--temperature", "0",
        "--max-tokens", "5", input="Hello\n/quit\n", timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    tuned_at, base_at = out.index("tuned:"), out.index("base:")
    assert tuned_at < base_at
    assert expected["tuned"].strip() in out[tuned_at:base_at] and expected["base"].strip() in out[base_at:]
    assert expected["base"] != expected["tuned"]
