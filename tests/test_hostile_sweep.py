"""Every command README lists, run as a real `localft` process against each hostile input it
would read: no traceback, exit code 2 with one `error:` line (0 where the input is fine), peak
memory under 1 GiB, and an answer within the time limit."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile import archives
from tests.hostile.models import (
    HOSTILE_TEMPLATES,
    broken_tokenizer_model,
    garbage_gguf,
    junk_model,
    no_chat_template_model,
    template_gguf,
)
from tests.hostile.process import LOCALFT, run_measured

PEAK_LIMIT = 1 << 30
TIME_LIMIT = 60  # seconds; every case answers in a few (a hostile template is cut at 3 s)
GOOD_CHAT = Path(__file__).resolve().parent / "fixtures" / "exports" / "prepared" / "chat.jsonl"

# Commands that read an export or data file: each of them meets every hostile data input.
READS_DATA = [["data", "import", "{p}", "-o", "{out}"], ["data", "inspect", "{p}"]]
# Commands that import data before anything else: the same importer, so two inputs suffice.
IMPORTS_FIRST = [["train", "{p}", "--steps", "1"], ["recipe", "run", "style-clone", "--from", "{p}"]]
# Commands that take a run, a model or a GGUF: handed a data file instead.
WRONG_KIND = [
    ["runs", "show", "{p}"], ["runs", "resume", "{p}"], ["runs", "stop", "{p}"], ["eval", "{p}"],
    ["merge", "{p}"], ["export", "{p}"], ["chat", "{p}"],
]  # fmt: skip
# Commands that take a model folder.
READS_MODEL = [
    ["data", "import", "{good}", "-o", "{out}", "--model", "{p}"],
    ["train", "{good}", "--model", "{p}", "--steps", "1"],
    ["export", "{p}", "-o", "{out}", "--no-verify"],
]
CHAT = [["chat", "{p}"]]

Build = Callable[[Path, Callable], Path]
# input name -> (builder(folder, tiny_models) -> path, [(argv, expected exit code)])
CASES: dict[str, tuple[Build, list[tuple[list[str], int]]]] = {}


def case(name: str, build: Build, commands: list[list[str]], code: int = 2) -> None:
    CASES[name] = (build, [(argv, code) for argv in commands])


def data(builder) -> Build:
    return lambda folder, tiny: builder(folder)


case("zip-bomb-lying-header", data(archives.zip_bomb_lying_header), READS_DATA + IMPORTS_FIRST + WRONG_KIND)
case("zip-declared-1GiB", data(archives.zip_declared_huge), READS_DATA)
case("tar-member-600MiB", data(archives.tar_huge_member), READS_DATA)
case("endless-file", data(archives.endless_file), READS_DATA)
case("truncated-zip", data(archives.truncated_zip), READS_DATA)
case("truncated-tar", data(archives.truncated_tar), READS_DATA)
case("corrupt-zip", data(archives.corrupt_archive), READS_DATA)
case("links-tar", data(archives.links_tar), READS_DATA)
case("traversal-zip", data(archives.traversal_zip), READS_DATA, code=0)
case("deep-json", data(archives.deep_json), READS_DATA)
case("deep-tweets", data(archives.deep_tweets), READS_DATA)
case("big-number", data(archives.big_number_json), READS_DATA)
case("invalid-utf8", data(archives.invalid_utf8), READS_DATA)
case("non-object-jsonl", data(archives.non_object_jsonl), READS_DATA)
case("roles-out-of-order", data(archives.roles_out_of_order), READS_DATA + IMPORTS_FIRST)
case("roles-mixed", data(archives.roles_mixed), READS_DATA, code=0)
for junk in ("config-not-json", "config-a-list", "config-bad-shape", "no-tokenizer"):
    case(junk, lambda folder, tiny, junk=junk: junk_model(folder, junk, tiny("llama")), READS_MODEL + CHAT)
case("broken-tokenizer", lambda f, tiny: broken_tokenizer_model(f, tiny("llama")), READS_MODEL[1:2])
case("no-chat-template", lambda f, tiny: no_chat_template_model(f, tiny("llama")), READS_MODEL[1:2])
# Through a real GGUF and `localft chat`: a hang, a bomb folded at compile time, memory growth and an
# escape (every template is also rendered in-process by test_hostile_templates).
for name in ("nested-loops", "repeat-bomb", "doubling", "escape"):
    build = lambda f, tiny, n=name: template_gguf(f, tiny("llama"), n, HOSTILE_TEMPLATES[n])  # noqa: E731
    case(f"template-{name}", build, CHAT)
case(
    "garbage-gguf", lambda f, tiny: garbage_gguf(f), CHAT + [["chat", "{p}", "--any-gguf"], ["export", "{p}"]]
)


def _file_in_the_way(folder: Path, tiny) -> Path:
    (folder / "a-file").write_text("not a folder")
    return folder / "a-file"


case(
    "output-under-a-file",
    _file_in_the_way,
    [
        ["data", "import", "{good}", "-o", "{p}/out"],
        ["data", "import", "{good}", "-o", "{p}"],
        ["export", "{tiny}", "-o", "{p}/out", "--quant", "F16", "--no-verify"],
    ],
)
HOME_UNDER_A_FILE = [["runs", "list"], ["train", "{good}", "--steps", "1"]]
FINE_ANYWHERE = [["doctor"], ["models"], ["recipe", "list"], ["data", "import", "{good}", "-o", "{out}"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_every_command_answers_a_hostile_input_in_one_line(tmp_path, tiny_models, name):
    build, commands = CASES[name]
    path = build(tmp_path, tiny_models)
    for argv, code in commands:
        _check(_run(argv, tmp_path, path, tiny_models), code, argv)


@pytest.mark.slow
def test_commands_with_localft_home_under_a_file(tmp_path, tiny_models):
    home = _file_in_the_way(tmp_path, tiny_models) / "home"
    for argv, code in [(a, 2) for a in HOME_UNDER_A_FILE] + [(a, 0) for a in FINE_ANYWHERE]:
        _check(_run(argv, tmp_path, home, tiny_models, env={"LOCALFT_HOME": str(home)}), code, argv)


def _run(argv: list[str], folder: Path, path: Path, tiny_models, env: dict | None = None):
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    values = {"p": str(path), "out": str(out), "good": str(GOOD_CHAT)}
    if any("{tiny}" in a for a in argv):
        values["tiny"] = str(tiny_models("llama"))
    args = [a.format(**values) for a in argv]
    return run_measured(LOCALFT + args, timeout=TIME_LIMIT, stdin="hello there\n/quit\n", env=env, cwd=folder)


def _check(outcome, code: int, argv: list[str]) -> None:
    where = f"localft {' '.join(argv)}: {outcome.describe()}"
    assert not outcome.timed_out, where
    assert "Traceback" not in outcome.stdout + outcome.stderr, where
    assert outcome.code == code, where
    if code == 2:  # progress lines may come first (train, recipes); the error is one line, the last
        lines = outcome.stderr.rstrip("\n").split("\n")
        assert lines[-1].startswith("error: ") and sum(x.startswith("error:") for x in lines) == 1, where
    assert outcome.peak_rss < PEAK_LIMIT, where
