"""export_folder / export_run: quantize, verify, Modelfile, LM Studio layout, resume, and the CLI."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from gguf import GGUFReader

from localft.chat.session import gguf_reply
from localft.config import ExportSpec, TrainSpec
from localft.events import Stage
from localft.export.pipeline import export_folder
from localft.run.export import export_run
from localft.run.folder import new_run

SHORT_TEXT = (
    "The museum behind the church held old maps of the coast and a logbook written by a lighthouse keeper. "
    "He recorded the weather every four hours for eleven years, and his handwriting grew smaller as the pages ran out."
)


@pytest.mark.slow
def test_export_folder_quantizes_verifies_and_describes(tiny_models, tmp_path):
    events = []
    spec = ExportSpec(quants=["Q4_K_M", "F16"], lmstudio=True)
    out = tmp_path / "out"
    report = export_folder(
        tiny_models("llama"),
        out,
        spec,
        emit=events.append,
        system_prompt="You write like Ada.",
        held_out=[("given text", SHORT_TEXT)],
        chat_reply=gguf_reply,
    )
    q4, f16 = (out / "llama-Q4_K_M.gguf"), (out / "llama-F16.gguf")
    assert [f.path for f in report.files] == [str(q4), str(f16)]
    assert q4.stat().st_size < f16.stat().st_size
    assert GGUFReader(q4).fields["general.file_type"].contents() == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M

    f16_parity = report.files[1].parity
    assert f16_parity["passed"] is True and f16_parity["top1"] >= 0.995
    assert report.files[0].parity["passed"] is None  # Q4_K_M is reported, not judged
    assert report.stop_check["passed"] and report.ok

    stages = {e.name for e in events if isinstance(e, Stage)}
    assert {"convert", "quantize", "verify"} <= stages
    quantize = [e for e in events if isinstance(e, Stage) and e.name == "quantize"]
    assert quantize[-1].done == quantize[-1].total

    modelfile = (out / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./llama-Q4_K_M.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You write like Ada."""' in modelfile
    assert "{{ .Content }}<|im_end|>" in modelfile
    assert (out / "lmstudio" / "localft" / "llama-GGUF" / q4.name).is_file()
    saved = json.loads((out / "export.json").read_text())
    assert saved["files"][1]["parity"]["ppl_gguf"] == pytest.approx(f16_parity["ppl_gguf"])

    # A rerun finds both files complete through their sidecars and rewrites neither.
    mtimes = {p: p.stat().st_mtime_ns for p in (q4, f16)}
    again = []
    export_folder(tiny_models("llama"), out, spec.model_copy(update={"verify": False}), emit=again.append)
    assert {p: p.stat().st_mtime_ns for p in (q4, f16)} == mtimes
    assert sum("already complete" in e.detail for e in again if isinstance(e, Stage)) == 2

    # A changed source (a new merge) makes the sidecar stale: the file is converted again.
    source = tiny_models("llama") / "config.json"
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    export_folder(tiny_models("llama"), out, ExportSpec(quants=["F16"], verify=False, ollama=False))
    assert f16.stat().st_mtime_ns != mtimes[f16]


SYSTEM = "You are Ada, writing short posts about lighthouses."


def merged_run(tiny_models):
    """A run of the tiny model, merged already, whose data carries a system prompt."""
    run = new_run(TrainSpec(model=str(tiny_models("llama"))))
    shutil.copytree(tiny_models("llama"), run.merged_dir)
    run.mark_stage("merge")  # merged before: export must not merge again
    rows = [
        {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Write a post."},
                      {"role": "assistant", "content": SHORT_TEXT}]}
    ]  # fmt: skip
    run.data_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        run.split_path(split).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return run


@pytest.mark.slow
def test_export_run_uses_merged_folder_test_split_and_training_system_prompt(tiny_models):
    run, system = merged_run(tiny_models), SYSTEM
    report = export_run(run, ExportSpec(quants=["Q4_0"]))
    assert [p.name for p in sorted(run.gguf_dir.glob("*.gguf"))] == [
        f"{run.id}-Q4_0.gguf"
    ]  # F16 was temporary
    # The short test split first, topped up with the bundled prose to enough tokens for a verdict.
    assert report.verify_text.startswith(f"{report.files[0].parity['tokens']} tokens: test split ")
    assert report.files[0].parity["tokens"] >= 512 and "bundled prose" in report.verify_text
    assert f'SYSTEM """{system}"""' in (run.gguf_dir / "Modelfile").read_text()
    assert run.stage_done("export")


def test_export_of_a_run_with_out_writes_there_as_its_own_export(tiny_models, tmp_path):
    """`localft export RUN --out DIR`: the run's export (its name, system prompt) in DIR, not gguf/."""
    import typer
    from typer.testing import CliRunner

    from localft.cli.export import export_command

    run = merged_run(tiny_models)
    app = typer.Typer()
    app.command()(export_command)
    result = CliRunner().invoke(app, [run.id, "-q", "F16", "--no-verify", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").glob("*.gguf")) == [f"{run.id}-F16.gguf"]
    assert f'SYSTEM """{SYSTEM}"""' in (tmp_path / "o" / "Modelfile").read_text()
    assert not run.gguf_dir.exists() and run.stage_done("export")


def test_export_command_reports_and_fails_cleanly(tiny_models, tmp_path, capsys):
    import typer
    from typer.testing import CliRunner

    from localft.cli.export import export_command

    app = typer.Typer()
    app.command()(export_command)
    runner = CliRunner()
    ok = runner.invoke(
        app, [str(tiny_models("qwen3")), "-q", "Q8_0", "-o", str(tmp_path / "o"), "--no-verify"]
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "o" / "qwen3-Q8_0.gguf").is_file() and "Q8_0" in ok.output

    bad = tmp_path / "gpt2"
    shutil.copytree(tiny_models("qwen3"), bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(config | {"architectures": ["GPT2LMHeadModel"]}))
    from tests.test_cli import run_cli

    capsys.readouterr()  # building the tiny models printed progress
    code, out, err = run_cli(capsys, "export", str(bad), "-o", str(tmp_path / "o2"))
    assert code == 2 and err.startswith("error: ") and "GPT2LMHeadModel" in err and len(err.splitlines()) == 1
    assert "Traceback" not in out + err
    assert not list((tmp_path / "o2").glob("*.gguf"))
