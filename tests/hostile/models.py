"""Model folders and GGUF files that attack the loader: junk config.json, broken or missing
tokenizers, chat templates that loop, balloon or recurse, and files that are not GGUF at all."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

TINY_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 49152}

# name -> (config.json text, tokenizer files kept); each refused before any run or import starts.
JUNK_CONFIGS = {
    "config-not-json": ("{not json", True),
    "config-a-list": ("[1, 2, 3]", True),
    "config-no-model-type": (json.dumps(TINY_SHAPE), True),
    "config-bad-shape": (json.dumps({"model_type": "llama", "hidden_size": "wide", "vocab_size": -1}), True),
    "config-deep": ('{"model_type": "llama", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", True),
    "no-tokenizer": (json.dumps({"model_type": "llama", **TINY_SHAPE}), False),
}

# name -> a chat template that must fail with one line, quickly, with little memory.
HOSTILE_TEMPLATES = {
    "nested-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "endless-output": "{% for i in range(100000) %}{{ range(100000)|join(',') }}{% endfor %}",
    "repeat-bomb": "{{ 'x' * 10000000000 }}",
    "doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "format-width": "{{ '{:>9999999999}'.format(messages[0].content) }}",
    "recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
}


def junk_model(folder: Path, name: str, tokenizer_from: Path) -> Path:
    """A model folder named `name` with the junk config.json of JUNK_CONFIGS[name]."""
    config, with_tokenizer = JUNK_CONFIGS[name]
    out = folder / name
    out.mkdir(parents=True)
    (out / "config.json").write_text(config)
    if with_tokenizer:
        for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            if (tokenizer_from / f).is_file():
                shutil.copy(tokenizer_from / f, out / f)
    return out


def broken_tokenizer_model(folder: Path, model_dir: Path) -> Path:
    """A real model folder whose tokenizer.json is garbage."""
    out = folder / "broken-tokenizer"
    shutil.copytree(model_dir, out)
    (out / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": 17}}')
    return out


def no_chat_template_model(folder: Path, model_dir: Path) -> Path:
    """A real base-model folder with no chat template (chat rows cannot be tokenized with it)."""
    out = folder / "no-chat-template"
    shutil.copytree(model_dir, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def template_gguf(folder: Path, model_dir: Path, name: str, template: str) -> Path:
    """A localft GGUF of `model_dir` whose stored chat template is `template`."""
    from localft.export.gguf import convert_folder

    src = folder / f"{name}-model"
    shutil.copytree(model_dir, src)
    (src / "chat_template.jinja").write_text(template)
    return convert_folder(src, folder / f"{name}-F16.gguf", "F16").path


def garbage_gguf(folder: Path) -> Path:
    """Random bytes behind a GGUF magic number and a plausible header."""
    path = folder / "garbage.gguf"
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + os.urandom(8192))
    return path


def run_with_adapter(folder: Path, model_dir: Path):
    """A torch run on `model_dir` holding a LoRA adapter (untrained: merging it is exact), ready to merge."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from localft.config import TrainSpec
    from localft.run.folder import new_run

    run = new_run(TrainSpec(model=str(model_dir), backend="torch", device="cpu"), root=folder / "runs")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir), LoraConfig(r=4, target_modules=["q_proj"])
    )
    model.save_pretrained(run.adapter_dir)
    return run
