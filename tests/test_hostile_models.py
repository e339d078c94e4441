"""A model folder that is not what it claims (junk config.json, a broken or missing tokenizer, no
chat template) is refused with one line naming the file, before an import or a run starts."""

from __future__ import annotations

import pytest

from localft.cli.export import _resolve_target
from localft.config import DataSpec
from localft.data.dataset import build_dataset
from localft.errors import ModelError
from localft.plan.catalog import resolve_model
from tests.hostile import archives
from tests.hostile.models import JUNK_CONFIGS, broken_tokenizer_model, junk_model, no_chat_template_model

EXPECTED = {
    "config-not-json": "config.json is not valid JSON",
    "config-a-list": "config.json is not a transformers model config (no model_type)",
    "config-no-model-type": "config.json is not a transformers model config (no model_type)",
    "config-bad-shape": "config.json has no valid hidden_size, num_hidden_layers, num_attention_heads, vocab_size",
    "config-deep": "config.json is not valid JSON (maximum recursion depth",
    "no-tokenizer": "has no tokenizer (tokenizer.json or tokenizer.model or vocab.json)",
}


@pytest.mark.parametrize("name", list(JUNK_CONFIGS))
def test_junk_model_folder_is_refused_by_name(tmp_path, tiny_models, name):
    folder = junk_model(tmp_path, name, tiny_models("llama"))
    for resolve in (resolve_model, _resolve_target):  # train/data import, and export
        with pytest.raises(ModelError) as info:
            resolve(str(folder))
        assert EXPECTED[name] in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (broken_tokenizer_model, "cannot load the tokenizer in"),
        (no_chat_template_model, "has no chat template, which chat rows need"),
    ],
    ids=["broken-tokenizer", "no-chat-template"],
)
def test_tokenizer_that_cannot_serve_chat_rows_is_refused(tmp_path, tiny_models, build, words):
    folder = build(tmp_path, tiny_models("llama"))
    data = archives.roles_mixed(tmp_path)
    with pytest.raises(ModelError, match=words):
        build_dataset(data, DataSpec(), tmp_path / "out", tokenizer_dir=resolve_model(str(folder)))
