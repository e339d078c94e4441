"""Reproducible installs: the shipped constraints pin every dependency, `localft doctor` compares the
installed versions with them (no network) and names each one that differs."""

from __future__ import annotations

import importlib.metadata
import json

from localft.cli import doctor
from localft.cli.doctor import direct_dependencies, format_doctor, version_drift
from tests.test_cli import run_cli


def test_the_shipped_constraints_pin_every_dependency_of_localft():
    tested = doctor.tested_versions()
    deps = direct_dependencies()
    assert {"transformers", "peft", "torch", "gguf", "llama-cpp-python", "mlx-lm", "textual"} <= set(deps)
    assert [name for name in deps if name not in tested] == []


def test_doctor_finds_this_install_on_the_tested_versions(capsys):
    """`make` installs with the constraints, so this environment is the tested set."""
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0
    assert "Versions  the tested ones (localft/constraints.txt)" in out


def test_doctor_names_each_version_that_differs(capsys):
    real = importlib.metadata.version("transformers")
    tested = {**doctor.tested_versions(), "transformers": "4.0.0", "peft": "0.1.0"}
    drift = version_drift(tested)
    assert {(d["package"], d["installed"], d["tested"]) for d in drift} == {
        ("transformers", real, "4.0.0"),
        ("peft", importlib.metadata.version("peft"), "0.1.0"),
    }
    code, out, _ = run_cli(capsys, "doctor", "--json")
    report = {**json.loads(out), "version_drift": drift}
    line = format_doctor(report)[-1]
    assert line.startswith("Versions  warning: 2 differ from the tested ones: peft ")
    assert f"transformers {real} (tested 4.0.0)" in line and report["constraints"] in line


def test_pins_apply_only_from_the_python_they_were_tested_on():
    text = 'numpy==2.4.6; python_version >= "3.11"\ntqdm==4.70.1\n# comment\n'
    assert doctor.tested_versions(text, python=(3, 12)) == {"numpy": "2.4.6", "tqdm": "4.70.1"}
    assert doctor.tested_versions(text, python=(3, 10)) == {"tqdm": "4.70.1"}
