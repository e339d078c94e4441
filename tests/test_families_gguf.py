"""Every catalog family's GGUF: F16 and Q8_0 in llama.cpp against HF, the end-of-turn token, a
chat that stops on it, tokenization, and the Ollama Modelfile; the README's model table and what
the converter refuses. Models come from tests/tiny.py, merged once (tests/family_support.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from tests.family_support import (
    NAMES,
    SYSTEM,
    TOKENIZER_PENDING,
    chat_rows,
    hf_logits,
    merged,
    pending,
    sample_ids,
    tokenizer,
)  # fmt: skip
from tests.tiny import FAMILIES, family_model_dir

GGUF_ARCH = {"smollm2": "llama", "qwen3": "qwen3", "qwen3.5": "qwen35", "llama3.2": "llama", "smollm3": "smollm3",
             "gemma3": "gemma3", "gemma4": "gemma4", "phi4-mini": "phi3"}  # fmt: skip


@pytest.fixture(scope="module")
def family():
    return family_model_dir


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    """The conversion test's files, which the tokenizer test reuses: not inside another test's tmp_path."""
    return tmp_path_factory.mktemp("gguf")


# --- GGUF ----------------------------------------------------------------------------------------

# Largest logit difference llama.cpp may show, as a share of the largest logit: F16 weights and
# llama.cpp's F16 activations and key/value cache; Q8_0 weights and 8-bit activations in its dot
# products (the 6-block Gemmas show the most). A conversion mistake (a norm, a rotation, a head
# order) moves logits by tens of percent.
TOLERANCE = {"F16": 0.01, "Q8_0": 0.1}
_GGUF: dict[str, Path] = {}  # name -> the last file the conversion test wrote (reused below)


def llama_logits(gguf: Path, ids: list[int]) -> np.ndarray:
    from localft.export.llamacpp import close_llama, load_llama

    llm = load_llama(gguf, n_ctx=256, logits_all=True)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        close_llama(llm)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_gguf_f16_and_q8_0_run_in_llama_cpp_like_hf(name, gguf_dir, monkeypatch):
    """The merged model converts to F16 and Q8_0; llama.cpp loads both and gives HF's logits (next
    token wherever HF's choice is clear of the runner-up); the file names the family's
    architecture, keeps its chat template, and ends a turn on the family's end-of-turn token."""
    from gguf import GGUFReader

    from localft.export import gguf as converter
    from localft.export.gguf import convert_folder

    # Both files get the same vocabulary: read it once (a 262k one takes seconds to read).
    monkeypatch.setattr(converter, "load_vocab", cache(converter.load_vocab))
    folder, family = merged(name), FAMILIES[name]
    ids = sample_ids(name)
    want = hf_logits(folder, ids)
    scale = np.abs(want).max()
    ranked = np.sort(want, axis=-1)
    for quant, tol in TOLERANCE.items():
        out = convert_folder(folder, gguf_dir / f"{name}-{quant}.gguf", quant)
        _GGUF[name] = out.path
        got = llama_logits(out.path, ids)
        assert np.abs(got - want).max() <= tol * scale, (quant, np.abs(got - want).max(), scale)
        clear = ranked[:, -1] - ranked[:, -2] > 2 * tol * scale
        assert np.array_equal(got.argmax(-1)[clear], want.argmax(-1)[clear]), quant
    reader = GGUFReader(out.path)
    assert reader.fields["general.architecture"].contents() == GGUF_ARCH[name]
    tok = tokenizer(name)
    template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    assert reader.fields["tokenizer.chat_template"].contents() == template
    eot = tok.convert_tokens_to_ids(family.end_of_turn)
    assert reader.fields["tokenizer.ggml.tokens"].contents(eot) == family.end_of_turn
    # Gemma 2's template (the Gemma 3 stand-in) refuses a system message: the chat folds it.
    assert_chat_stops_at(out.path, eot, system=SYSTEM)


def assert_chat_stops_at(gguf: Path, eot: int, system: str | None) -> None:
    """llama.cpp renders the GGUF's own template and ends generation on the end-of-turn token
    (the tiny random model is steered to it: what matters is that llama.cpp stops there)."""
    import llama_cpp

    from localft.chat.session import ChatSession

    session = ChatSession(gguf, system=system, temperature=0.0, max_tokens=8, n_ctx=256)
    try:
        assert llama_cpp.llama_vocab_is_eog(session.llm._model.vocab, eot)
        session.messages = [{"role": "user", "content": "Write about coffee."}]
        out = session.llm.create_completion(session.prompt_tokens(), max_tokens=8, logit_bias={eot: 100.0})
        choice = out["choices"][0]
        assert choice["finish_reason"] == "stop" and out["usage"]["completion_tokens"] <= 1
    finally:
        session.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pending(TOKENIZER_PENDING, n)) for n in NAMES])
def test_gguf_tokenizes_like_hf(family, name, tmp_path):
    """llama.cpp's tokenizer in the GGUF gives HF's ids: on llama.cpp's own test strings for this
    vocabulary, and on a chat rendered with the family's template (special tokens included)."""
    from localft.chat.session import ChatSession
    from localft.data.chat_render import fold_system
    from localft.export.gguf import convert_folder
    from tests.real_material import vocab_cases

    fam = FAMILIES[name]
    gguf = _GGUF.get(name) or convert_folder(family(name), tmp_path / f"{name}.gguf", "Q8_0").path
    tok = tokenizer(name)
    # llama.cpp's own test strings, where the HF rebuild of the vocabulary gets llama.cpp's ids.
    cases = [
        text
        for text, ids in (vocab_cases(fam.tokenizer) if fam.tokenizer else [])
        if tok(text, add_special_tokens=False)["input_ids"] == ids
    ]
    session = ChatSession(gguf, system=SYSTEM, n_ctx=512)
    try:
        for text in cases + ["The harbour town woke slowly. 1234 + 56 = 1290!"]:
            ids = session.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            assert ids == tok(text, add_special_tokens=False)["input_ids"], text
        # The system prompt, folded into the first user turn where the template has no system
        # role (Gemma 3), as training and the chat both do.
        messages = fold_system(tok, chat_rows(1)[0]["messages"][:2])
        want = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        assert session.prompt_tokens(messages) == list(want)
    finally:
        session.close()


# --- Ollama --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_modelfile_template_renders_the_family_chat_format(family, name, tmp_path):
    """Ollama's TEMPLATE gives the text the family's Jinja template gives (with and without a
    system prompt, several turns), and its stop lines hold the family's end-of-turn token. Gemma 3
    (Gemma 2's template, which refuses a system message) folds the system prompt into the first
    user turn, as its card says."""
    from localft.chat.template import render_chat
    from localft.export.ollama import write_modelfile
    from tests.go_template import render_go

    fam = FAMILIES[name]
    tok = tokenizer(name)
    jinja = tok.chat_template
    path = write_modelfile(tmp_path, "m.gguf", jinja, system_prompt=SYSTEM, eos_token=tok.eos_token)
    text = path.read_text(encoding="utf-8")
    go = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    stops = [
        json.loads(line.split(" ", 2)[2]) for line in text.splitlines() if line.startswith("PARAMETER stop")
    ]
    assert fam.end_of_turn in stops
    turns = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Write about coffee."}]  # fmt: skip
    assert render_go(go, None, turns) == render_chat(jinja, turns)
    with_system = render_go(go, SYSTEM, turns)
    if name == "gemma3":
        folded = [{**turns[0], "content": f"{SYSTEM}\n\n{turns[0]['content']}"}, *turns[1:]]
        assert with_system == render_chat(jinja, folded)
    else:
        assert with_system == render_chat(jinja, [{"role": "system", "content": SYSTEM}, *turns])


# --- catalog, README, converter refusals (no model needed) ------------------------------------


def test_readme_model_table_is_the_catalog():
    """README's model table shows what `localft models` computes (sizes and memory are not typed)."""
    from localft.disk import fmt_bytes
    from localft.plan.catalog import CATALOG
    from localft.plan.memory import catalog_memory

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.split("## Models", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[4].count("/") == 1:
            rows[cells[0]] = cells
    assert list(rows) == [m.name for m in CATALOG]
    for m in CATALOG:
        memory = catalog_memory(m)
        want = [
            m.name,
            m.size,
            fmt_bytes(memory["lora_bf16"]),
            fmt_bytes(memory["qlora_4bit"]),
            m.hf_id,
            m.mlx_id,
        ]
        assert rows[m.name] == want


@pytest.mark.parametrize(
    ("name", "architecture", "change", "message"),
    [
        ("smollm3-3b", "SmolLM3ForCausalLM", {"no_rope_layers": [1, 1, 0, 1] * 9}, "every 4th"),
        ("qwen3.5-0.8b", "Qwen3_5ForCausalLM",
         {"layer_types": ["full_attention"] + ["linear_attention"] * 3 + ["linear_attention"] * 20},
         "every 4th block attending"),
        ("gemma4-e2b", "Gemma4ForCausalLM", {"num_kv_shared_layers": 21}, "last two unshared"),
        ("gemma4-e2b", "Gemma4ForCausalLM", {"enable_moe_block": True}, "mixture-of-experts"),
    ],
)  # fmt: skip
def test_converter_refuses_what_llama_cpp_cannot_run(name, architecture, change, message):
    """The catalog's own layout converts; a variant llama.cpp would run wrongly is refused, named."""
    from localft.errors import ExportError
    from localft.export.families import describe
    from localft.plan.catalog import catalog_entry

    config = catalog_entry(name).config | {"architectures": [architecture]}
    describe(config).check(config)
    with pytest.raises(ExportError, match=message):
        describe(config | change).check(config | change)


def test_modelfile_without_a_persona_keeps_the_template_default_system_prompt(tmp_path):
    """SmolLM3's template writes a metadata header and a default system prompt when a chat has none:
    with no persona the Modelfile sets no SYSTEM, so Ollama renders exactly that opening."""
    from localft.chat.template import render_chat
    from localft.export.ollama import write_modelfile
    from tests.go_template import render_go

    jinja = tokenizer("smollm3").chat_template
    text = write_modelfile(tmp_path, "m.gguf", jinja).read_text(encoding="utf-8")
    assert "\nSYSTEM " not in text
    go = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    turns = [{"role": "user", "content": "Hi there"}]
    assert render_go(go, None, turns) == render_chat(jinja, turns)
    assert "You are a helpful AI assistant named SmolLM" in render_go(go, None, turns)
