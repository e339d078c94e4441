"""The completion-only mask: only assistant tokens carry labels, on ChatML, Llama 3 and Gemma templates."""

from __future__ import annotations

import pytest

from localft.data.chat_tokens import IGNORE, tokenize_row

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# Gemma has no system role: the system text opens the first user turn; the assistant is "model".
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}"
    "{% set rest = messages[1:] %}{% else %}{% set first = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ (first if loop.first else '') + m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# What each template puts after an assistant reply: the reply plus this is exactly what is trained.
END_OF_TURN = {"chatml": "<|im_end|>\n", "llama3": "<|eot_id|>", "gemma": "<end_of_turn>\n"}
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "gemma": GEMMA}
# The real tokenizers know their turn markers as special tokens; teach them to the embedded one.
MARKERS = {
    "chatml": [],
    "llama3": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "gemma": ["<start_of_turn>", "<end_of_turn>"],
}

CONVERSATION = [
    {"role": "system", "content": "You are Maya. Write each LinkedIn post in your own voice."},
    {"role": "user", "content": "Write a LinkedIn post about code review."},
    {"role": "assistant", "content": "Code review is not a gate.\n\nIt is a conversation. 🙂 Grüße!"},
    {"role": "user", "content": "Shorter, please."},
    {"role": "assistant", "content": "Review is a conversation → #CodeReview"},
]


def _load_embedded():
    from transformers import AutoTokenizer

    from localft.models import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


@pytest.fixture(scope="module")
def embedded_tokenizer():
    return _load_embedded()


def _with_template(name: str):
    tok = _load_embedded()
    tok.chat_template = TEMPLATES[name]
    if MARKERS[name]:
        tok.add_special_tokens({"additional_special_tokens": MARKERS[name]})
    return tok


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@pytest.mark.parametrize("name", ["chatml", "llama3", "gemma"])
def test_only_assistant_tokens_carry_labels(name):
    tok = _with_template(name)
    example = tokenize_row(tok, {"messages": CONVERSATION}, max_len=4096)
    labelled = [i for i, label in enumerate(example.labels) if label != IGNORE]
    assert all(example.labels[i] == example.input_ids[i] for i in labelled)
    # the labelled tokens are two unbroken runs (one per reply) that decode to exactly the replies
    runs = sum(1 for j, i in enumerate(labelled) if j == 0 or labelled[j - 1] != i - 1)
    assert runs == 2
    replies = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]
    expected = "".join(r + END_OF_TURN[name] for r in replies)
    assert _decode(tok, [example.input_ids[i] for i in labelled]) == expected
    unlabelled = _decode(
        tok, [t for t, label in zip(example.input_ids, example.labels, strict=True) if label == IGNORE]
    )
    assert "Write a LinkedIn post about code review." in unlabelled
    assert "conversation" not in unlabelled
    assert _decode(tok, example.input_ids) == tok.apply_chat_template(CONVERSATION, tokenize=False)


def test_embedded_model_template_masks_the_reply(embedded_tokenizer):
    row = {"messages": CONVERSATION[:3]}
    example = tokenize_row(embedded_tokenizer, row, max_len=4096)
    trained = _decode(
        embedded_tokenizer,
        [t for t, lab in zip(example.input_ids, example.labels, strict=True) if lab != IGNORE],
    )
    assert trained == CONVERSATION[2]["content"] + "<|im_end|>\n"


def test_train_on_all_and_text_rows_and_truncation(embedded_tokenizer):
    row = {"messages": CONVERSATION[:3]}
    everything = tokenize_row(embedded_tokenizer, row, max_len=4096, train_on="all")
    assert everything.labels == everything.input_ids
    short = tokenize_row(embedded_tokenizer, row, max_len=10)
    assert len(short.input_ids) == len(short.labels) == 10
    text = tokenize_row(embedded_tokenizer, {"text": "Small pull requests get real feedback."}, max_len=4096)
    assert text.labels == text.input_ids
    assert text.input_ids[-1] == embedded_tokenizer.eos_token_id
