"""The completion-only mask: only assistant tokens carry labels (ChatML, Llama 3, Gemma-style templates),
system prompts folded where a template has no system role, and the one-line errors where it cannot
mask. Real templates of every family: tests/test_data_chat_tokens_real.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from localft.config import DataSpec
from localft.data.chat_render import WAY_OUT
from localft.data.chat_tokens import IGNORE, render, tokenize_row
from localft.data.dataset import build_dataset
from localft.data.report import format_report
from localft.errors import DataError
from tests.real_material import template

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
# The end-of-turn token after each reply: the reply plus this is exactly what is trained (the
# newline some templates write after it is formatting the model never generates).
END_OF_TURN = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "gemma": "<end_of_turn>"}
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

    from localft.plan.catalog import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


@pytest.fixture(scope="module")
def embedded_tokenizer():
    return _load_embedded()


def _with_template(name: str, template: str | None = None):
    """The embedded tokenizer with one of the templates above (or `template`) and its markers."""
    tok = _load_embedded()
    tok.chat_template = template or TEMPLATES[name]
    if MARKERS[name]:
        tok.add_special_tokens({"additional_special_tokens": MARKERS[name]})
    return tok


def _gemma2():
    """Gemma 2's real template, which raises 'System role not supported' on a system message."""
    return _with_template("gemma", template("google-gemma-2-2b-it"))


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
    assert trained == CONVERSATION[2]["content"] + "<|im_end|>"


def test_train_on_all_and_text_rows_and_truncation(embedded_tokenizer):
    row = {"messages": CONVERSATION[:3]}
    everything = tokenize_row(embedded_tokenizer, row, max_len=4096, train_on="all")
    assert everything.labels == everything.input_ids
    short = tokenize_row(embedded_tokenizer, row, max_len=10)
    assert len(short.input_ids) == len(short.labels) == 10
    text = tokenize_row(embedded_tokenizer, {"text": "Small pull requests get real feedback."}, max_len=4096)
    assert text.labels == text.input_ids
    assert text.input_ids[-1] == embedded_tokenizer.eos_token_id


def test_system_prompt_opens_the_first_user_turn_where_the_template_has_no_system_role():
    tok = _gemma2()
    system, first_user = CONVERSATION[0]["content"], CONVERSATION[1]["content"]
    text = render(tok, CONVERSATION)
    assert f"<start_of_turn>user\n{system}\n\n{first_user}<end_of_turn>" in text and text.count(system) == 1
    everything = tokenize_row(tok, {"messages": CONVERSATION}, max_len=4096, train_on="all")
    assert _decode(tok, everything.input_ids) == text
    # evaluation prompts are rendered through the same function, so they fold the same way
    prompt = render(tok, CONVERSATION[:2], add_generation_prompt=True)
    assert prompt.endswith(f"{system}\n\n{first_user}<end_of_turn>\n<start_of_turn>model\n")


EXPORTS = Path(__file__).parent / "fixtures" / "exports" / "linkedin-small"


def test_data_report_says_when_the_system_prompt_was_folded(tmp_path):
    from localft.plan.catalog import embedded_model_dir

    _gemma2().save_pretrained(tmp_path / "gemma-like")
    folded = build_dataset(EXPORTS, DataSpec(), tmp_path / "a", tokenizer_dir=tmp_path / "gemma-like")
    assert folded.tokens["system_folded"] == folded.tokens["rows"] == 3 and folded.tokens["trained"] > 0
    shown = format_report(folded)
    assert "folded into the first user turn of 3 rows: the model's chat template has no system role" in shown
    native = build_dataset(EXPORTS, DataSpec(), tmp_path / "b", tokenizer_dir=embedded_model_dir())
    assert native.tokens["system_folded"] == 0 and "folded into" not in format_report(native)


# A plain-text template: nothing special ends a reply, so the model could not learn to stop.
PLAIN = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
# A template that never renders the replies: there is nothing to train on.
NO_REPLIES = (
    "{% for m in messages if m['role'] != 'assistant' %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize(
    "chat_template, says",
    [
        (PLAIN, "ends a reply without a special end-of-turn token"),
        (NO_REPLIES, "does not render an assistant reply"),
    ],
    ids=["plain-text", "no-replies"],
)
def test_a_template_that_cannot_be_masked_is_a_one_line_error_with_the_way_out(chat_template, says):
    from localft.plan.catalog import embedded_model_dir

    tok = _with_template("chatml", chat_template)
    row = {"messages": CONVERSATION[:3]}
    with pytest.raises(DataError) as err:
        tokenize_row(tok, row, max_len=4096)
    message = str(err.value)
    assert says in message and str(embedded_model_dir()) in message and "\n" not in message
    assert message.endswith(WAY_OUT) and "--set train_on=all" in message
    everything = tokenize_row(tok, row, max_len=4096, train_on="all")  # the way out works
    assert everything.labels == everything.input_ids and CONVERSATION[1]["content"] in _decode(
        tok, everything.input_ids
    )


def test_conversations_a_template_refuses_are_one_line_errors():
    tok = _gemma2()
    user_twice = [CONVERSATION[1], CONVERSATION[3], CONVERSATION[2]]
    with pytest.raises(DataError, match="cannot render this conversation: Conversation roles must alternate"):
        tokenize_row(tok, {"messages": user_twice}, max_len=4096)
    with pytest.raises(DataError, match="no user turn to fold the system prompt into"):
        tokenize_row(tok, {"messages": [CONVERSATION[0], CONVERSATION[2]]}, max_len=4096)
    tok.chat_template = None
    with pytest.raises(DataError, match="has no chat template"):
        tokenize_row(tok, {"messages": CONVERSATION[1:3]}, max_len=4096)


def test_data_import_takes_the_way_out_the_error_names(tmp_path):
    _with_template("chatml", PLAIN).save_pretrained(tmp_path / "plain")
    with pytest.raises(DataError, match="--set train_on=all"):
        build_dataset(EXPORTS, DataSpec(), tmp_path / "a", tokenizer_dir=tmp_path / "plain")
    report = build_dataset(
        EXPORTS, DataSpec(), tmp_path / "b", tokenizer_dir=tmp_path / "plain", train_on="all"
    )
    assert report.tokens["trained"] == report.tokens["total"] > 0
