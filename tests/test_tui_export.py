"""The Export screen's Modelfile and LM Studio buttons on a real trained run: each writes what it
promises, checked on the files' content (the Modelfile renders the GGUF's own chat template)."""

from __future__ import annotations

import json
import os

import pytest

from localft.tui.app import LocalftApp
from localft.tui.screens.export import ExportScreen
from tests.training import make_run, train_run
from tests.tui_support import MACHINE, record_notifications, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.llama, pytest.mark.slow]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def shown(screen: ExportScreen) -> str:
    """The screen's export report without white space (long paths wrap there)."""
    return "".join(str(screen.query_one("#export-result").content).split())


async def press_and_wait(pilot, screen: ExportScreen, button: str) -> None:
    """Press a button of the screen and wait for the export it starts to finish (its export.json
    is written last, then the screen hears of it)."""
    record = screen.run.gguf_dir / "export.json"

    def written() -> int:
        return record.stat().st_mtime_ns if record.is_file() else 0

    before = written()
    said = record_notifications(pilot.app)
    await pilot.click(f"#{button}")
    await wait_until(pilot, lambda: written() != before and not screen.exporting, timeout=180)
    assert pilot.app.worker_failures == []
    assert "export finished" in said


async def test_the_modelfile_and_lm_studio_buttons_write_what_they_promise(tmp_path, tiny_models):
    from gguf import GGUFReader

    from localft.chat.template import render_chat
    from tests.go_template import render_go

    spec, run = make_run(tmp_path, tiny_models("llama"), steps=2, n_valid=0)
    train_run(spec, run)
    gguf = run.gguf_dir / f"{run.id}-Q8_0.gguf"
    modelfile, lmstudio = run.gguf_dir / "Modelfile", run.gguf_dir / "lmstudio" / "localft" / f"{run.id}-GGUF"

    app = LocalftApp(machine=MACHINE, attach=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = ExportScreen(run.path)
        await app.push_screen(screen)
        await pilot.pause()
        quants = screen.query_one("#quants")
        quants.deselect_all()
        quants.select("Q8_0")
        await pilot.pause()

        await press_and_wait(pilot, screen, "modelfile")
        assert gguf.is_file() and modelfile.is_file() and not lmstudio.exists()
        assert "verify" not in screen.view.stages  # the button writes the Modelfile, it does not verify
        text = modelfile.read_text(encoding="utf-8")
        assert text.startswith(f"FROM ./{gguf.name}\n")
        assert 'PARAMETER stop "<|im_end|>"' in text.splitlines()
        assert 'SYSTEM """You are Ann."""' in text  # the system prompt the run trained with
        # Ollama builds the prompt the GGUF's own chat template builds.
        go = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
        field = GGUFReader(gguf).fields["tokenizer.chat_template"]
        jinja = bytes(field.parts[field.data[0]]).decode("utf-8")
        turns = [{"role": "user", "content": "Write about coffee."}, {"role": "assistant", "content": "I love coffee."},
                 {"role": "user", "content": "And jazz?"}]  # fmt: skip
        system = [{"role": "system", "content": "You are Ann."}]
        assert render_go(go, "You are Ann.", turns) == render_chat(jinja, system + turns)
        assert f"Modelfile:{modelfile}" in shown(screen)

        gguf_written = gguf.stat().st_mtime_ns
        await press_and_wait(pilot, screen, "lmstudio-go")
        # LM Studio's models/<publisher>/<model>-GGUF/<file>.gguf: the same file, not a second export.
        assert sorted(p.name for p in lmstudio.iterdir()) == [gguf.name]
        assert os.path.samefile(lmstudio / gguf.name, gguf) and gguf.stat().st_mtime_ns == gguf_written
        report = json.loads((run.gguf_dir / "export.json").read_text())
        assert report["lmstudio_dir"] == str(lmstudio) and f"LMStudio:{lmstudio}" in shown(screen)
