"""Every catalog family, on a tiny random model of its real architecture with its real tokenizer
and chat template (tests/tiny.py): catalog shape and memory, a few training steps on torch and on
MLX, packed examples kept apart, merge and fuse equal to base + adapter. The GGUF side is in
test_families_gguf.py.

Checks that wait on other parts of issue 11 are xfail(strict) with the reason (tests/family_support.py),
so they fail, and the marker goes, the day they pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from localft.config import LoraSpec, TrainSpec
from localft.events import Log, Step
from localft.run.folder import new_run
from tests.family_support import (
    MASK_PENDING,
    NAMES,
    SYSTEM,
    chat_rows,
    hf_logits,
    merged,
    merged_adapter,
    pending,
    sample_ids,
    text_rows,
    training_rows,
)  # fmt: skip
from tests.tiny import FAMILIES, family_model_dir
from tests.training import train_run


@pytest.fixture(scope="module")
def family():
    return family_model_dir


def make_run(model_dir: Path, name: str, backend: str, **overrides):
    fields = dict(model=str(model_dir), backend=backend, device="cpu", steps=4, batch_size=1, max_seq_len=96,
                  learning_rate=5e-3, warmup_steps=1, eval_every=100, save_every=100, log_every=1, seed=0)  # fmt: skip
    spec = TrainSpec(**(fields | overrides))
    run = new_run(spec)
    run.data_dir.mkdir(parents=True, exist_ok=True)
    # The same row twice: every step trains on the same batch, so the loss must fall.
    rows = training_rows(name, 1) * 2
    run.split_path("train").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return spec, run


def train(spec, run):
    return train_run(spec, run)


def assert_learns(events, name: str) -> None:
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    packing_off = [e.message for e in events if isinstance(e, Log) and "packing is off" in e.message]
    # Qwen3.5's recurrent blocks would carry one example into the next: it trains unpacked, and says so.
    assert bool(packing_off) == (name == "qwen3.5"), packing_off


# --- catalog -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_catalog_entries_are_this_architecture_and_their_size_is_computed(family, name):
    """The tiny model stands for the catalog entries of its family, and the memory module counts
    parameters and LoRA adapters of that architecture exactly (the catalog's figures use it)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from localft.backends.torch.modeling import lora_config
    from localft.plan.catalog import catalog_entry
    from localft.plan.memory import lora_params, model_shape
    from localft.plan.model_shapes import family_kind

    folder = family(name)
    config = json.loads((folder / "config.json").read_text())
    for entry_name in FAMILIES[name].catalog:
        entry = catalog_entry(entry_name)
        assert entry is not None, entry_name
        assert family_kind(entry.config) == family_kind(config)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    shape = model_shape(folder)
    assert shape.params == sum(p.numel() for p in model.parameters())
    spec = TrainSpec(model=str(folder))
    peft_model = get_peft_model(model, lora_config(spec.lora, shape.layers))
    assert lora_params(spec, shape) == sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


# --- training ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_torch_trains_a_few_steps(family, name):
    spec, run = make_run(family(name), name, "torch")
    assert_learns(train(spec, run), name)


@pytest.mark.slow
@pytest.mark.mlx
@pytest.mark.parametrize("name", NAMES)
def test_mlx_trains_a_few_steps(family, name):
    pytest.importorskip("mlx_lm")
    spec, run = make_run(family(name), name, "mlx")
    assert_learns(train(spec, run), name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pending(MASK_PENDING, n)) for n in NAMES])
def test_assistant_mask_on_the_family_template(family, name):
    """A chat row with a system prompt, through the family's real template: loss only on the reply
    (and the end-of-turn token after it)."""
    from transformers import AutoTokenizer

    from localft.data.chat_tokens import IGNORE, tokenize_row

    tok = AutoTokenizer.from_pretrained(family(name))
    row = chat_rows(1)[0]
    ex = tokenize_row(tok, row, 512)
    trained = tok.decode([t for t, label in zip(ex.input_ids, ex.labels, strict=True) if label != IGNORE])
    assert row["messages"][-1]["content"] in trained
    assert FAMILIES[name].end_of_turn in trained
    assert "Write about" not in trained and SYSTEM not in trained


# --- packing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_packed_examples_never_see_each_other(family, name):
    """Example B's loss alone equals its loss packed after A (restarting positions, torch); for
    Qwen3.5 packing would leak, so it is refused and the test shows the leak it avoids."""
    import torch
    from transformers import AutoTokenizer

    from localft.backends.torch.loss import token_loss_sum
    from localft.backends.torch.modeling import Placement, build_lora_model
    from localft.data.chat_tokens import IGNORE, tokenize_row
    from localft.train.loop import packing_for
    from localft.train.rows import Row, collate, pack_examples

    folder = family(name)
    spec = TrainSpec(model=str(folder), device="cpu")
    tok = AutoTokenizer.from_pretrained(folder)
    model = build_lora_model(folder, spec, Placement("cpu", "fp32")).eval()
    a, b = (tokenize_row(tok, row, 96) for row in text_rows(2))
    row = pack_examples([a, b], max_len=256)[0]
    assert row.position_ids.count(0) == 2

    def loss_of_b(r: Row) -> float:
        start = len(r.input_ids) - len(b.input_ids)
        labels = [IGNORE] * len(r.labels)
        labels[start + 1 :] = b.labels[1:]
        with torch.no_grad():
            s, n = token_loss_sum(model, collate([Row(r.input_ids, labels, r.position_ids)], 0), "cpu")
        return float(s) / n

    alone = loss_of_b(Row(b.input_ids, b.labels, list(range(len(b.input_ids)))))
    packed = loss_of_b(row)
    leaky = loss_of_b(Row(row.input_ids, row.labels, list(range(len(row.input_ids)))))
    assert abs(leaky - alone) > 1e-4  # one long sequence: B sees A
    packs, why_not = packing_for(spec, folder)
    if name == "qwen3.5":
        assert not packs and "recurrent" in why_not
        assert abs(packed - alone) > 1e-5  # restarting positions do not reset the recurrent state
    else:
        assert packs and why_not is None
        assert packed == pytest.approx(alone, abs=1e-5)


@pytest.mark.mlx
@pytest.mark.parametrize("name", NAMES)
def test_mlx_runs_the_family_like_transformers_and_packs_exactly(family, name):
    """mlx-lm loads the family (config keys transformers 5 moved, LongRoPE's short factors) into
    the model transformers runs; packed rows give the loss of separate examples."""
    pytest.importorskip("mlx_lm")
    import mlx.core as mx
    from transformers import AutoTokenizer

    from localft.backends.mlx.loss import masked_loss
    from localft.backends.mlx.modeling import load_base, packing_blocker
    from localft.backends.mlx.session import batch_arrays
    from localft.data.chat_tokens import tokenize_row
    from localft.train.loop import packing_for
    from localft.train.rows import collate, eval_rows

    folder = family(name)
    model, _ = load_base(folder, mx.float32, quantize=False)
    ids = sample_ids(name)
    got = np.array(model(mx.array([ids]))[0])
    assert np.abs(got - hf_logits(folder, ids)).max() < 1e-4
    packs, why_not = packing_for(TrainSpec(model=str(folder), backend="mlx"), folder)
    if name == "qwen3.5":
        assert not packs and "recurrent" in why_not
        return
    assert packs and packing_blocker(model) is None
    tok = AutoTokenizer.from_pretrained(folder)
    examples = [tokenize_row(tok, r, 97) for r in text_rows(2)]

    def loss(packed: bool, trained_only: bool = False) -> float:
        # trained_only: the vocabulary projection on trained positions only, as CPU training does
        b = collate(eval_rows(examples, 256, packed), 0)
        total, n = masked_loss(model, *batch_arrays(b, trained_only), packed=packed)
        return total.item() / n.item()

    assert loss(True) == pytest.approx(loss(False), rel=1e-5)
    assert loss(True, trained_only=True) == pytest.approx(loss(True), rel=1e-5)


# --- merge, fuse ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_merge_gives_base_plus_adapter(family, name):
    ids = sample_ids(name)
    folder = merged(name)
    want = hf_logits(family(name), ids, adapter=merged_adapter(name))
    got = hf_logits(folder, ids)
    before = hf_logits(family(name), ids)
    assert np.abs(want - before).max() > 1e-2  # the adapter changes the model
    assert np.abs(got - want).max() < 1e-4
    for file in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (folder / file).is_file(), file


@pytest.mark.slow
@pytest.mark.mlx
@pytest.mark.parametrize("name", NAMES)
def test_fuse_gives_mlx_base_plus_adapter(family, name):
    pytest.importorskip("mlx_lm")
    from localft.backends import get_backend
    from tests.test_mlx_fuse import mlx_logits, random_adapter

    base = family(name)
    lora = LoraSpec(rank=4, alpha=8)
    run = new_run(TrainSpec(model=str(base), backend="mlx", lora=lora))
    random_adapter(base, lora, False, run.adapter_dir)
    out = get_backend("mlx").merge(run, run.merged_dir)
    ids = sample_ids(name)
    want = mlx_logits(base, run.adapter_dir, ids)
    assert np.abs(want - hf_logits(base, ids)).max() > 1e-2
    assert np.abs(hf_logits(out, ids) - want).max() < 1e-4
    assert json.loads((out / "config.json").read_text()) == json.loads((base / "config.json").read_text())
