"""`--prompts model`: the embedded GGUF writes each request through llama.cpp, and answers are cached."""

from __future__ import annotations

import json

import pytest

from localft.config import DataSpec
from localft.data.dataset import build_dataset
from localft.data.model_prompts import clean_request, prompt_model_path
from localft.errors import DataError

STEM = "Write a LinkedIn post about"


def test_clean_request_keeps_one_phrase_or_falls_back():
    assert (
        clean_request(STEM, " small pull requests and fast reviews. Then more\n", "fb")
        == f"{STEM} small pull requests and fast reviews."
    )
    assert clean_request(STEM, " on-call pay: [link]\nPost: x", "fb") == f"{STEM} on-call pay."
    assert clean_request(STEM, "\n\n", "fallback.") == "fallback."
    assert clean_request(STEM, " a", "fallback.") == "fallback."


def test_prompt_model_must_be_a_gguf(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="is not a .gguf file"):
        prompt_model_path(DataSpec(prompts="model", prompt_model=str(tmp_path / "model.bin")))


@pytest.mark.slow
def test_embedded_gguf_writes_requests_once(tmp_path):
    pytest.importorskip("llama_cpp")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "standups.txt").write_text(
        "Our standup took 40 minutes. We moved status updates into writing; now it takes ten."
    )
    spec = DataSpec(prompts="model", valid_fraction=0, test_fraction=0)
    events = []
    build_dataset(notes, spec, tmp_path / "a", emit=events.append)
    row = json.loads((tmp_path / "a" / "train.jsonl").read_text(encoding="utf-8"))
    request = row["messages"][1]["content"]
    assert (
        request.startswith("Write a post about ")
        and request.endswith(".")
        and len(request) > len("Write a post about x.")
    )
    assert [e.detail for e in events if e.name == "prompts"] == ["0 cached", "writing requests"]
    events.clear()
    build_dataset(notes, spec, tmp_path / "b", emit=events.append)  # the second import asks nothing
    assert [e.detail for e in events if e.name == "prompts"] == ["1 cached"]
    assert (tmp_path / "b" / "train.jsonl").read_bytes() == (tmp_path / "a" / "train.jsonl").read_bytes()
