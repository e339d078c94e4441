"""The training loop for reinforcement rounds (method grpo): each step takes the next training
requests, the model being trained drafts G completions of each (seeded per step, so a resumed run
drafts the same tokens from the checkpoint's weights), the run's scorer rates them, and the
objective of localft.train.reinforce is minimised. The scorer is handed in by the caller (run/
builds it from eval/'s rewards); train/ knows only that it scores a request's drafts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from localft.data.chat_tokens import IGNORE, read_jsonl, tokenize_chat, tokenize_row
from localft.errors import DataError, LocalftError, RunError
from localft.events import Eval

from .loop import Loop
from .preference_loop import ExampleStream, Item
from .reinforce import group_advantages, micro_weight, reinforce_loss, scales_rewards
from .rows import Row, collate, eval_rows, usable
from .state import step_seed

MIN_DRAFT_TOKENS = 16


class DraftScorer(Protocol):
    def score_row(self, row: dict, drafts: list[str]) -> list[float]:
        """One reward per draft of the request `row` (a chat row of the run's split); raises a
        LocalftError naming the reward that failed."""
        ...


@dataclass(frozen=True)
class Prompt:
    row: dict  # the training row (its reply is the reference the rewards may compare against)
    ids: list[int]  # the chat template's tokens up to the reply, generation prompt included
    stop_ids: list[int]  # eos and the token the template ends a reply with
    reply_tokens: int = 0  # the data's reply, its stop token included


def usual_reply_tokens(requests: list[Prompt], max_seq_len: int) -> int:
    """The draft limit when the spec sets none: as long as 9 in 10 of the data's replies (a draft
    cut shorter than the person writes can never pass the form's length check), at least 16
    tokens, and at most half the sequence, which leaves the prompt the other half."""
    lengths = sorted(p.reply_tokens for p in requests) or [0]
    usual = lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]
    return max(MIN_DRAFT_TOKENS, min(usual, max_seq_len // 2))


def request_prompt(tokenizer, row: dict, max_prompt: int) -> Prompt | None:
    """The prompt of a training row, tokenized exactly as training renders it (the template's
    tokens before the last reply's first trained token); None when it has no reply or is too long."""
    if "messages" not in row:
        return None
    example = tokenize_chat(tokenizer, row["messages"], 1 << 30, last_turns=1)
    trained = [i for i, label in enumerate(example.labels) if label != IGNORE]
    if not trained or not 0 < trained[0] <= max_prompt:
        return None
    stops = {example.input_ids[trained[-1]]}
    if tokenizer.eos_token_id is not None:
        stops.add(int(tokenizer.eos_token_id))
    return Prompt(row, list(example.input_ids[: trained[0]]), sorted(stops), len(trained))


class RequestStream(ExampleStream):
    """Requests in a seeded order, epoch after epoch (the preference stream's order and position)."""

    def __init__(self, prompts: list[Prompt], seed: int, position: int = 0) -> None:
        self.items = [Item(i, 0, len(p.ids)) for i, p in enumerate(prompts)]
        self.seed, self.position = seed, position


class ReinforceLoop(Loop):
    """GRPO and its relatives on the run's training requests, with the scorer's rewards."""

    scorer: DraftScorer | None = None

    def prepare_data(self, tokenizer) -> None:
        spec, plan = self.spec, self.plan
        if self.scorer is None:
            raise RunError("a grpo run needs rewards: train it through `localft train` or the worker")
        self.tokenizer = tokenizer
        split = self.run_dir.split_path
        requests = [
            p for r in read_jsonl(split("train")) if (p := request_prompt(tokenizer, r, plan.max_seq_len))
        ]
        self.max_draft = spec.max_draft_tokens or usual_reply_tokens(requests, plan.max_seq_len)
        max_prompt = plan.max_seq_len - self.max_draft
        self.prompts = [p for p in requests if len(p.ids) <= max_prompt]
        if not self.prompts:
            raise DataError(
                f"run {self.run_dir.id} has no training request whose prompt fits {max_prompt} tokens "
                f"(--max-seq-len {plan.max_seq_len} less max_draft_tokens {self.max_draft})"
            )
        # Held out: the validation split's requests (the report scores the test split), one reply
        # each for as many as eval_batches micro-batches of drafts hold; their real replies give
        # the validation loss beside.
        valid = read_jsonl(split("valid")) if split("valid").is_file() else []
        held_out = [p for r in valid if (p := request_prompt(tokenizer, r, max_prompt))]
        self.held_out = held_out[: spec.eval_batches * plan.micro_batch * spec.group_size]
        rows = [p.row for p in self.held_out]
        self.valid_ex = [
            ex for r in rows if usable(ex := tokenize_row(tokenizer, r, plan.max_seq_len, spec.train_on))
        ]
        self.rewards: list[float] = []

    def make_stream(self, position: int) -> RequestStream:
        return RequestStream(self.prompts, self.spec.seed, position)

    def prepare_session(self, model_dir) -> None:
        """With a KL term (beta), the weights now (the start adapter, before any checkpoint's) are
        the reference policy: the session keeps a copy of them for the whole round."""
        self.beta = self.spec.beta or 0.0
        self.kl: float | None = None
        if self.beta:
            self.session.keep_reference()
        self.valid_rows = eval_rows(self.valid_ex, self.plan.max_seq_len, packing=False)

    def describe_data(self) -> str:
        s = self.spec
        kl = f", KL to the start adapter x {self.beta:g}" if self.beta else ""
        held_out = f"; held-out reward on {len(self.held_out)} validation requests" if self.held_out else ""
        return (f"grpo ({s.loss_type}{kl}) on {len(self.prompts)} training requests, {s.group_size} drafts each "
                f"of at most {self.max_draft} tokens{held_out}")  # fmt: skip

    def step_fields(self) -> dict:
        if not self.rewards:
            return {}
        fields = {"reward": float(np.mean(self.rewards)), "reward_std": float(np.std(self.rewards))}
        return fields if self.kl is None else {**fields, "kl": self.kl}

    def train_step(self) -> tuple[float, int, int]:
        """The core's step; the tokens it reports are the prompts' and the drafts' (the drafts
        are the trained ones), so tok/s counts what was generated and trained."""
        loss, prompt_tokens, _ = super().train_step()
        return loss, prompt_tokens + self.draft_tokens, self.draft_tokens

    def _accumulate(self, items: list[Item], n_trained: int) -> float:
        """Draft, score, then the objective's gradients, micro-batch (of requests) by micro-batch.
        Drafting is seeded by the step, so an out-of-memory retry drafts the same tokens again."""
        spec, seed = self.spec, step_seed(self.spec.seed, self.state.step)
        G, prompts = spec.group_size, [self.prompts[item.index] for item in items]
        groups = self.session.draft([p.ids for p in prompts], G, self.max_draft, seed,
                                    sorted({t for p in prompts for t in p.stop_ids}))  # fmt: skip
        self.rewards = rewards = [r for prompt, drafts in zip(prompts, groups, strict=True)
                                  for r in self._scores(prompt, drafts, self.state.step + 1)]  # fmt: skip
        advantages = group_advantages(rewards, G, scales_rewards(spec.loss_type))
        rows = [Row(tuple(p.ids + d), tuple([IGNORE] * len(p.ids) + d), tuple(range(len(p.ids) + len(d))))
                for p, group in zip(prompts, groups, strict=True) for d in group]  # fmt: skip
        self.draft_tokens = sum(len(d) for group in groups for d in group)
        step_tokens = float(self.draft_tokens)
        self.session.seed(seed)
        micro, total = self.state.micro_batch * G, 0.0
        kl_sums = []  # (the micro-batch's mean KL, its draft tokens)
        for i in range(0, len(rows), micro):
            chunk, adv = rows[i : i + micro], advantages[i : i + micro]
            batch = collate(chunk, self.pad_id, self.session.pad_multiple)
            ref = self.session.reference_logps(batch) if self.beta else None
            parts = []

            def objective(ops, logps, mask, adv=adv, ref=ref, parts=parts):
                out = reinforce_loss(ops, spec.loss_type, logps, mask, ops.asarray(adv, logps),
                                     reference_logps=None if ref is None else ops.asarray(ref, logps),
                                     beta=self.beta, max_draft_tokens=self.max_draft, tokens=step_tokens)  # fmt: skip
                parts.append(out)
                return out

            weight = micro_weight(spec.loss_type, len(chunk), len(rows))
            total += weight * self.session.accumulate_objective(batch, objective, weight, per_token=True)
            if self.beta:
                kl_sums.append((float(parts[-1].kl), sum(x != IGNORE for r in chunk for x in r.labels)))
        if kl_sums:
            self.kl = sum(k * n for k, n in kl_sums) / max(sum(n for _, n in kl_sums), 1)
        return total

    def _train_to_end(self) -> None:
        """A fresh round first measures its start adapter's held-out reward (step 0): the best
        adapter it keeps and exports is then never one that scores below where it began."""
        if self.state.step == 0 and self.valid_rows and self.state.best_step is None:
            self.mark("validation of the start adapter")
            self.evaluate()
        super()._train_to_end()

    def validation(self) -> Eval:
        """The mean reward of the greedy reply to each held-out request (the reply a person gets
        at temperature 0), with the validation loss of their real replies beside it. Its measure
        is minus that reward: the round keeps its best-rewarded adapter and stops early on it."""
        loss = self.validation_loss() if self.valid_rows else math.nan
        rewards = []
        for prompt in self.held_out:  # one at a time: progress for the watch between replies
            (reply,) = self.session.draft(
                [prompt.ids], 1, self.max_draft, self.spec.seed, prompt.stop_ids, 0.0
            )
            rewards.extend(self._scores(prompt, reply, self.state.step))
            self.mark()
        return Eval(self.state.step, loss, reward=float(np.mean(rewards)), reward_std=float(np.std(rewards)))

    def _scores(self, prompt: Prompt, drafts: list[list[int]], step: int) -> list[float]:
        texts = [self.tokenizer.decode(d, skip_special_tokens=True) for d in drafts]
        try:
            return [float(x) for x in self.scorer.score_row(prompt.row, texts)]
        except LocalftError as exc:
            raise RunError(f"{exc} at step {step}; {self._kept()}") from None

    def _kept(self) -> str:
        saved = self.saved_step
        return f"the last checkpoint is step {saved}" if saved else "no checkpoint was written yet"
