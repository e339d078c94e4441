"""The assistant-only mask on real chat templates with real tokenizers, in three conversation shapes.

Each cell checks the content of the mask: the trained tokens of each assistant turn decode to the
reply as the template renders it plus the end-of-turn token, and nothing else is trained.
"""

from __future__ import annotations

import copy
from functools import cache

import pytest

from localft.data.chat_tokens import IGNORE, tokenize_row
from tests.real_material import hf_tokenizer_dir, template, template_names

# Where llama.cpp's material lacks a family's own vocabulary, the closest real one stands in, with
# the template's turn markers added as special tokens (as the family's tokenizer has them):
#   Gemma 2            -> gemma-4's vocabulary + <start_of_turn>/<end_of_turn> (no Gemma 2/3 vocab)
#   Mistral-Nemo       -> llama-spm + [INST]/[/INST]              (tekken is not in the material)
#   Mistral-Small 3.2  -> llama-spm + [SYSTEM_PROMPT]... [INST]... (tekken is not in the material)
#   SmolLM3            -> llama-bpe + <|im_start|>/<|im_end|>     (SmolLM3 = Llama 3 vocab + ChatML)
#   DeepSeek-R1 distills -> llama-bpe / qwen2 + the DeepSeek markers (their bases' vocabularies)
#   gpt-oss            -> qwen2 + the harmony markers            (o200k is not in the material)
#   Granite 3.3, 4.0   -> starcoder + <|start_of_role|>...       (Granite's vocabularies are not in it)
# Gemma 3's template is not in the material either; Gemma 2's is the closest (the same turns;
# Gemma 3's own template folds the system prompt into the first user turn, as localft does here).
DEEPSEEK = ("<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>")
HARMONY = ("<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|return|>", "<|call|>")


class Case:
    def __init__(self, vocab, eot, markers=(), first="", last="", last_eot=None, own_template=False):
        self.vocab, self.markers, self.own_template = vocab, markers, own_template
        self.eot, self.last_eot = eot, last_eot or eot
        self.first, self.last = first, last  # text the template writes before the reply (earlier/last turn)


CASES = {
    "Qwen-Qwen2.5-7B-Instruct": Case("qwen2", "<|im_end|>"),
    "Qwen-Qwen3-0.6B": Case("qwen2", "<|im_end|>", last="<think>\n\n</think>\n\n"),
    # Qwen3.5's generation prompt opens the reasoning block ('<think>\n'), so the model writes the
    # rest; the rendered '\n\n' after '<think>' is one token that starts in the prompt: not trained.
    "Qwen3.5-4B": Case("qwen35", "<|im_end|>", last="</think>\n\n"),
    "google-gemma-2-2b-it": Case("gemma-4", "<end_of_turn>", ("<start_of_turn>", "<end_of_turn>")),
    "google-gemma-4-31B-it": Case("gemma-4", "<turn|>"),
    # The gemma-4 vocabulary file carries a Gemma 4 template of its own (a later revision).
    "gemma-4 (vocabulary's own)": Case("gemma-4", "<turn|>", own_template=True),
    "microsoft-Phi-3.5-mini-instruct": Case("phi-3", "<|end|>"),
    "meta-llama-Llama-3.1-8B-Instruct": Case("llama-bpe", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct": Case("llama-bpe", "<|eot_id|>"),
    "meta-llama-Llama-3.3-70B-Instruct": Case("llama-bpe", "<|eot_id|>"),
    "mistralai-Mistral-Nemo-Instruct-2407": Case("llama-spm", "</s>", ("[INST]", "[/INST]")),
    "Mistral-Small-3.2-24B-Instruct-2506": Case(
        "llama-spm", "</s>", ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[INST]", "[/INST]")
    ),
    "HuggingFaceTB-SmolLM3-3B": Case("llama-bpe", "<|im_end|>", ("<|im_start|>", "<|im_end|>")),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": Case("llama-bpe", DEEPSEEK[2], DEEPSEEK),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": Case("qwen2", DEEPSEEK[2], DEEPSEEK),
    "openai-gpt-oss-120b": Case(
        "qwen2",
        "<|end|>",
        HARMONY,
        first="<|channel|>final<|message|>",
        last="<|channel|>final<|message|>",
        last_eot="<|return|>",
    ),  # fmt: skip
    "ibm-granite-granite-3.3-2B-Instruct": Case(
        "starcoder", "<|end_of_text|>", ("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>")
    ),
    "ibm-granite-granite-4.0": Case(
        "starcoder", "<|end_of_text|>", ("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>")
    ),
    "SmolLM2 (embedded)": Case("embedded", "<|im_end|>", own_template=True),
}

SYSTEM = {"role": "system", "content": "You are Maya. Write each LinkedIn post in your own voice."}
TURNS = [
    {"role": "user", "content": "Write a LinkedIn post about code review."},
    {"role": "assistant", "content": "Code review is not a gate.\n\nIt is a conversation. 🙂 Grüße!"},
    {"role": "user", "content": "Shorter, please."},
    {"role": "assistant", "content": "Review is a conversation → #CodeReview"},
]
SHAPES = {
    "single-turn-with-system": [SYSTEM, *TURNS[:2]],
    "multi-turn-with-system": [SYSTEM, *TURNS],
    "multi-turn-without-system": TURNS,
}


@cache
def _base_tokenizer(vocab: str):
    """A real tokenizer, loaded once per module run, and the chat template its folder came with."""
    from transformers import AutoTokenizer

    from localft.plan.catalog import embedded_model_dir

    tok = AutoTokenizer.from_pretrained(
        embedded_model_dir() if vocab == "embedded" else hf_tokenizer_dir(vocab)
    )
    return tok, tok.chat_template


@cache
def _tokenizer(vocab: str, markers: tuple[str, ...]):
    tok, own = _base_tokenizer(vocab)
    if markers:  # a copy is quicker than loading the vocabulary again
        tok = copy.deepcopy(tok)
        tok.add_special_tokens(
            {"additional_special_tokens": list(markers)}, replace_extra_special_tokens=False
        )
    return tok, own


def paired_tokenizer(name: str):
    case = CASES[name]
    tok, own = _tokenizer(case.vocab, case.markers)
    tok.chat_template = own if case.own_template else template(name)
    return tok


def trained_runs(tok, example) -> list[str]:
    """The decoded text of each unbroken run of trained tokens."""
    runs: list[list[int]] = []
    for i, label in enumerate(example.labels):
        if label == IGNORE:
            continue
        assert label == example.input_ids[i]
        if runs and example.labels[i - 1] != IGNORE:
            runs[-1].append(label)
        else:
            runs.append([label])
    return [tok.decode(r, skip_special_tokens=False, clean_up_tokenization_spaces=False) for r in runs]


def expected_runs(case: Case, messages: list[dict]) -> list[str]:
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    return [
        (case.last + r + case.last_eot) if i == len(replies) - 1 else (case.first + r + case.eot)
        for i, r in enumerate(replies)
    ]


def test_every_named_template_is_in_the_material():
    assert {name for name, case in CASES.items() if not case.own_template} <= set(template_names())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CASES)
def test_mask_trains_each_reply_and_its_end_of_turn_token(name, shape):
    case, tok = CASES[name], paired_tokenizer(name)
    messages = SHAPES[shape]
    example = tokenize_row(tok, {"messages": messages}, max_len=1 << 20)
    assert trained_runs(tok, example) == expected_runs(case, messages)
    untrained = tok.decode(
        [t for t, label in zip(example.input_ids, example.labels, strict=True) if label == IGNORE],
        skip_special_tokens=False,
    )
    for m in messages:
        if m["role"] != "assistant":
            assert m["content"] in untrained
