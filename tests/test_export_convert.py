"""The HF -> GGUF converter on tiny random models of every supported architecture and the embedded model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader

from localft.export.gguf import LOCALFT_KEY, convert_folder
from localft.export.verify import TARGETS
from localft.export.weights import SafetensorsFolder
from tests.real_material import hf_tokenizer_dir
from tests.tiny import ARCHS, build_tiny_model

TEXT = "The harbour town woke slowly that spring. Fishing boats came back before dawn, with crates of fish."
GGUF_ARCH = {"mistral": "llama"}


def _field(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def _hf_logits(folder, ids):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def qwen2_with_its_own_vocabulary(out):
    """transformers tokenizes every qwen2-type folder with Qwen2's own rules, whatever tokenizer.json
    says, so a tiny Qwen2 carries Qwen2's real vocabulary (ending a turn at <|im_end|>, as the
    instruct models do)."""
    tokenizer = shutil.copytree(hf_tokenizer_dir("qwen2"), out / "tokenizer")
    config = json.loads((tokenizer / "tokenizer_config.json").read_text())
    (tokenizer / "tokenizer_config.json").write_text(json.dumps(config | {"eos_token": "<|im_end|>"}))
    return build_tiny_model(out / "model", "qwen2", tokenizer)


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_converts_and_runs_in_llama_cpp_like_hf(arch, tiny_models, tmp_path):
    from transformers import AutoTokenizer

    from localft.export.llamacpp import close_llama, load_llama

    folder = qwen2_with_its_own_vocabulary(tmp_path) if arch == "qwen2" else tiny_models(arch)
    result = convert_folder(folder, tmp_path / f"{arch}.gguf", "F32", name="tiny-model")
    assert result.path.is_file() and result.bytes == result.path.stat().st_size

    reader = GGUFReader(result.path)
    assert _field(reader, "general.architecture") == GGUF_ARCH.get(arch, arch)
    assert _field(reader, "tokenizer.ggml.pre") == ("qwen2" if arch == "qwen2" else "smollm")
    end_of_turn = AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids("<|im_end|>")
    assert _field(reader, "tokenizer.ggml.eos_token_id") == end_of_turn  # where a chat turn ends
    assert "<|im_start|>" in _field(reader, "tokenizer.chat_template")
    assert LOCALFT_KEY in reader.fields
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output_norm.weight", "blk.1.attn_output.weight"} <= names
    assert ("output.weight" in names) == (arch in ("mistral", "phi3"))  # untied heads only

    llm = load_llama(result.path, n_ctx=128, logits_all=True)
    try:
        ids = llm.tokenize(TEXT.encode(), add_bos=True)
        hf = _hf_logits(folder, ids)
        llm.eval(ids)
        ours = np.array(llm.scores[: len(ids)])
        generated = llm.create_completion(ids, max_tokens=4, temperature=0.0)["usage"]["completion_tokens"]
    finally:
        close_llama(llm)
    assert np.mean(hf.argmax(-1) == ours.argmax(-1)) == 1.0
    assert np.abs(hf - ours).max() < 5e-3  # F32 end to end: only kernel rounding differs
    assert generated >= 1


def test_q8_0_is_written_directly_with_progress(tiny_models, tmp_path):
    seen = []
    out_dir = tmp_path / "out"
    out = convert_folder(
        tiny_models("llama"), out_dir / "m-Q8_0.gguf", "Q8_0", progress=lambda i, n, t: seen.append((i, n))
    )
    reader = GGUFReader(out.path)
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == GGMLQuantizationType.F32  # 1-D stays F32
    assert seen[-1] == (len(reader.tensors), len(reader.tensors))
    assert [p.name for p in out_dir.iterdir()] == ["m-Q8_0.gguf"]  # no temporary file left


@pytest.mark.slow
def test_transformers_reads_our_gguf_back_to_the_same_weights(tiny_models, tmp_path):
    """transformers undoes llama's rotary permutation on load: the weights must round-trip exactly."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = tiny_models("llama")
    out = convert_folder(folder, tmp_path / "m.gguf", "F32", name="tiny-model")
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.path.name, dtype=torch.float32)
    original = SafetensorsFolder(folder)
    state = back.state_dict()
    for name in original.names():
        if name in state:
            np.testing.assert_array_equal(state[name].numpy(), original.read(name), err_msg=name)


@pytest.mark.slow
def test_embedded_model_f16_matches_hf_and_chats(tmp_path):
    """verify's F16 parity target on the embedded model (top-1 >= 99%, perplexity within 0.1%), then a
    chat through the GGUF's own template: the same prompt tokens as HF, an answer, and a stop."""
    from localft.chat.session import ChatSession
    from localft.export.verify import HfReference, bundled_text
    from localft.plan.catalog import embedded_model_dir

    folder = embedded_model_dir()
    out = convert_folder(folder, tmp_path / "embedded-F16.gguf", "F16")
    reader = GGUFReader(out.path)
    assert _field(reader, "tokenizer.ggml.pre") == "smollm"
    assert _field(reader, "llama.attention.head_count_kv") == 3
    ref = HfReference(folder, bundled_text(), max_tokens=320)
    parity = ref.compare(out.path, "F16")
    assert parity.tokenization_match
    assert parity.top1 >= TARGETS["F16"][0]
    assert abs(parity.ppl_change) <= 0.001

    session = ChatSession(out.path, temperature=0.0, max_tokens=40)
    try:
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        hf_ids = ref.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        assert session.prompt_tokens(messages) == list(hf_ids["input_ids"])
        answer = session.reply(messages[0]["content"])
        assert "Paris" in answer and session.last.finish_reason == "stop"
    finally:
        session.close()


def test_converting_imports_neither_torch_nor_transformers_and_holds_one_tensor(tmp_path):
    """The embedded model converts in a fresh process without importing torch or transformers (their
    import alone took 2-3 s and ~300 MiB, 4.6x the conversion itself: issue 24), and its peak memory
    stays near the interpreter plus its largest tensor (the 49152 x 576 embedding: 108 MiB in f32)."""
    import subprocess
    import sys

    from localft.plan.catalog import embedded_model_dir

    # VmHWM: the child's own peak (ru_maxrss would carry over the forked test process's).
    code = (
        "import sys; from pathlib import Path; from localft.export.gguf import convert_folder; "
        "convert_folder(Path(sys.argv[1]), Path(sys.argv[2]), 'F16'); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules)); "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
    )
    out = tmp_path / "embedded-F16.gguf"
    cmd = [sys.executable, "-c", code, str(embedded_model_dir()), str(out)]
    imported, peak_kib = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split("\n")[
        :2
    ]
    assert imported == "[]"
    assert int(peak_kib) / 1024 < 350, f"peak {int(peak_kib) / 1024:.0f} MiB"
    assert GGUFReader(out).fields["tokenizer.ggml.pre"].contents() == "smollm"
