"""The training loop for reinforcement rounds (method grpo): each step takes the next training
requests, the model being trained drafts G completions of each (seeded per step, so a resumed run
drafts the same tokens from the checkpoint's weights), the run's scorer rates them, and the
objective of localft.train.reinforce is minimised. The scorer is handed in by the caller (run/
builds it from eval/'s rewards); train/ knows only that it scores a request's drafts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from localft.data.chat_tokens import IGNORE, read_jsonl, tokenize_chat
from localft.errors import DataError, LocalftError, RunError

from .loop import Loop
from .preference_loop import ExampleStream, Item
from .reinforce import group_advantages, micro_weight, reinforce_loss, scales_rewards
from .rows import Row, collate
from .state import step_seed


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
    return Prompt(row, list(example.input_ids[: trained[0]]), sorted(stops))


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
        max_prompt = plan.max_seq_len - spec.max_draft_tokens
        rows = read_jsonl(self.run_dir.split_path("train"))
        self.prompts = [p for r in rows if (p := request_prompt(tokenizer, r, max_prompt)) is not None]
        if not self.prompts:
            raise DataError(
                f"run {self.run_dir.id} has no training request whose prompt fits {max_prompt} tokens "
                f"(--max-seq-len {plan.max_seq_len} less max_draft_tokens {spec.max_draft_tokens})"
            )
        self.valid_rows = []  # no held-out loss: the rewards are the measure
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

    def describe_data(self) -> str:
        s = self.spec
        kl = f", KL to the start adapter x {self.beta:g}" if self.beta else ""
        return (f"grpo ({s.loss_type}{kl}) on {len(self.prompts)} training requests, {s.group_size} drafts each "
                f"of at most {s.max_draft_tokens} tokens")  # fmt: skip

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
        groups = self.session.draft([p.ids for p in prompts], G, spec.max_draft_tokens, seed,
                                    sorted({t for p in prompts for t in p.stop_ids}))  # fmt: skip
        rewards = []
        for prompt, drafts in zip(prompts, groups, strict=True):
            texts = [self.tokenizer.decode(d, skip_special_tokens=True) for d in drafts]
            try:
                scores = [float(x) for x in self.scorer.score_row(prompt.row, texts)]
            except LocalftError as exc:
                raise RunError(f"{exc} at step {self.state.step + 1}; {self._kept()}") from None
            rewards.extend(scores)
        self.rewards = rewards
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
                                     beta=self.beta, max_draft_tokens=spec.max_draft_tokens, tokens=step_tokens)  # fmt: skip
                parts.append(out)
                return out

            weight = micro_weight(spec.loss_type, len(chunk), len(rows))
            total += weight * self.session.accumulate_objective(batch, objective, weight, per_token=True)
            if self.beta:
                kl_sums.append((float(parts[-1].kl), sum(x != IGNORE for r in chunk for x in r.labels)))
        if kl_sums:
            self.kl = sum(k * n for k, n in kl_sums) / max(sum(n for _, n in kl_sums), 1)
        return total

    def _kept(self) -> str:
        saved = self.saved_step
        return f"the last checkpoint is step {saved}" if saved else "no checkpoint was written yet"
