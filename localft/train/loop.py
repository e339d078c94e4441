"""The training loop, written once for every backend: rows in a seeded order, accumulation and
out-of-memory halving, the non-finite-loss stop, evaluation and early stopping, stop requests,
checkpoints a resumed run continues from exactly, and the events that report all of it."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from localft.atomic import atomic_dir, atomic_write_json
from localft.config import TrainSpec
from localft.errors import DoesNotFit, RunError
from localft.events import Checkpoint, Emit, Eval, Log, RunStarted, Step
from localft.plan.planner import Plan
from localft.run.checkpoints import find_resume_checkpoint, read_state, require_checkpoint_space, write_state
from localft.run.folder import RunDir

from .budget import Calibration
from .rows import Row, RowStream, collate, eval_rows, tokenize_split
from .session import LoadRequest, OutOfMemory, Session
from .state import LoopState, learning_rate, step_seed
from .watchdog import CollectiveWatch
from .world import (
    RANK_FILE,
    World,
    check_world_size,
    rank_seed,
    rank_state,
    read_rank_state,
)


def packing_for(spec: TrainSpec, model_dir: Path, session: Session | None = None) -> tuple[bool, str | None]:
    """(pack rows?, why not where packing was asked for): the architecture must let packed
    examples be kept apart (localft.plan.model_shapes), and so must the backend's framework."""
    from localft.plan.model_shapes import packing_blocker

    if not spec.packing:
        return False, None
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}  # loading the model reports what is wrong with the folder
    reason = packing_blocker(config) or (session.packing_blocker() if session is not None else None)
    return reason is None, reason


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def pad_token(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


class StopRequested(Exception):
    """A stop request or early stopping: the loop ends with a checkpoint and the adapter."""


class Loop:
    """One run's loop over a backend session; `run()` trains from the current state to the plan's
    last step, an early stop or a stop request."""

    watch: CollectiveWatch | None = None  # several processes: ends a rank that stops progressing

    def __init__(self, run: RunDir, plan: Plan, emit: Emit, stop: Callable[[], bool], backend) -> None:
        self.run_dir, self.plan, self.emit, self.stop, self.backend = run, plan, emit, stop, backend
        self.spec = run.read_spec()
        self.eval_every = plan.eval_every or self.spec.eval_every  # the plan's, once it sized the run

    def setup(self) -> None:
        from localft.plan.catalog import resolve_model
        from localft.plan.planner import check_plan
        from localft.run.checkpoints import resume_checkpoint

        spec, plan, run = self.spec, self.plan, self.run_dir
        check_plan(plan)  # a run that cannot fit is refused before any weights load
        model_dir = resolve_model(spec.model)
        tokenizer = load_tokenizer(model_dir)
        self.pad_id = pad_token(tokenizer)
        self.prepare_data(tokenizer)  # an empty split fails here, before loading
        self.state = LoopState(micro_batch=plan.micro_batch)
        self.saved_step: int | None = None  # the newest checkpoint this attempt can rely on
        folder = resume_checkpoint(run, self.emit)
        if folder is not None:
            self.state = LoopState.from_dict(read_state(folder))
            self.state.micro_batch = self.state.micro_batch or plan.micro_batch
            self.saved_step = self.state.step
            check_world_size(self.state.world_size, plan.world_size, run.id)
        self.state.world_size = plan.world_size
        # The attempt's first event (after any damaged checkpoint skipped); what loading says follows it.
        self.emit(RunStarted(run.id, plan.backend, spec.model, plan.device, plan.steps, self.state.step))
        self.mark("loading the model (every rank joins the group)")
        self.session: Session = self.backend.load(LoadRequest(model_dir, spec, plan, self.emit))
        self.mark("preparing the first step")
        self.world: World = getattr(self.session, "world", None) or World()
        check_world_size(plan.world_size, self.world.size, run.id)  # launched as planned
        if spec.start_adapter:  # a preference round continues from a finished run's adapter
            self.session.load_adapter(Path(spec.start_adapter))
        self.prepare_session(model_dir)  # before a checkpoint's weights: a reference is the start's
        if folder is not None:
            self.session.load_training_state(folder)
            mine = read_rank_state(folder, self.world)
            if mine and mine.get("position") != self.state.position:
                raise RunError(f"checkpoint {folder.name}: rank {self.world.rank}'s data position differs; "
                               "resume from an earlier checkpoint or start a new run")  # fmt: skip
        self.stream = self.make_stream(self.state.position)
        self.emit(Log(self.describe_data()))

    # What a training method changes (localft.train.preference_loop overrides these): the
    # examples, the session's preparation, the stream of rows, the step's loss and the validation.
    def prepare_data(self, tokenizer) -> None:
        spec, plan, run = self.spec, self.plan, self.run_dir
        self.train_ex = tokenize_split(tokenizer, run.split_path("train"), plan.max_seq_len, spec.train_on)
        self.valid_ex = tokenize_split(tokenizer, run.split_path("valid"), plan.max_seq_len, spec.train_on)
        RowStream(self.train_ex, plan.max_seq_len, False, spec.seed)

    def prepare_session(self, model_dir: Path) -> None:
        self.packing, why_not = packing_for(self.spec, model_dir, self.session)
        if why_not:
            self.emit(Log(f"packing is off: {why_not}", "warning"))
        self.valid_rows = eval_rows(self.valid_ex, self.plan.max_seq_len, self.packing)

    def make_stream(self, position: int):
        return RowStream(self.train_ex, self.plan.max_seq_len, self.packing, self.spec.seed, position)

    def describe_data(self) -> str:
        return (f"{len(self.train_ex)} train / {len(self.valid_ex)} valid examples, {self.stream.rows_per_epoch} "
                f"rows per epoch ({'packed' if self.packing else 'one example a row'})")  # fmt: skip

    def step_fields(self) -> dict:
        """What a method adds to its Step events (a reinforcement round: the drafts' rewards)."""
        return {}

    def run(self) -> None:
        plan, state = self.plan, self.state
        if state.step < plan.steps and not state.stopped_early:  # a finished run trains no further
            try:
                self._train_to_end()
            except StopRequested as reason:
                self.emit(Log(f"training {reason} at step {state.step}; writing a checkpoint"))
        self.finish()

    def _train_to_end(self) -> None:
        spec, state = self.spec, self.state
        window_start, window_tokens = time.perf_counter(), 0
        calibration = Calibration.for_attempt(self.plan, state)  # --time without a measured pace
        while state.step < self.plan.steps:
            self.mark(f"step {state.step + 1}")
            if self.stop_requested():  # before each step: a stop lands between steps, never inside one
                raise StopRequested("stopped")
            tic = time.perf_counter()
            loss, real, trained = self.train_step()
            state.train_seconds += time.perf_counter() - tic
            state.step += 1
            state.tokens += real
            state.trained_tokens += trained
            window_tokens += real
            if calibration is not None and calibration.after_step(self):
                calibration = None
            plan = self.plan
            last = state.step == plan.steps
            if state.step % spec.log_every == 0 or last:
                elapsed = max(time.perf_counter() - window_start, 1e-9)
                lr = learning_rate(spec, plan.steps, state.step - 1)
                peak = self.session.peak_memory()
                self.emit(Step(state.step, plan.steps, loss, lr, state.tokens, window_tokens / elapsed, peak,
                               **self.step_fields()))  # fmt: skip
                window_start, window_tokens = time.perf_counter(), 0
            if self.valid_rows and (state.step % self.eval_every == 0 or last):
                self.mark(f"validation after step {state.step}")
                self.evaluate()
            if state.step % spec.save_every == 0 and not last:
                self.checkpoint()

    def train_step(self) -> tuple[float, int, int]:
        """One optimizer step over the next rows: (mean token loss, real tokens, trained tokens).
        Every rank draws the same global rows and trains its shard of them."""
        rows = self.stream.take(self.plan.global_batch)
        n_trained = sum(r.trained_tokens for r in rows)
        while True:
            try:
                loss = self.all_reduce_sum([self._accumulate(self.world.shard(rows), n_trained)])[0]
                break
            except OutOfMemory as exc:
                self.session.discard_gradients()
                self._halve_micro_batch(exc)
        if not math.isfinite(loss):
            self.session.discard_gradients()
            ckpt, _ = find_resume_checkpoint(self.run_dir, hashes=False)
            kept = f"the last good checkpoint is {ckpt.name}" if ckpt else "no checkpoint was written yet"
            raise RunError(
                f"loss became {loss} at step {self.state.step + 1}; {kept}. Lower --learning-rate, use "
                "fp32/bf16 instead of fp16, or check the data"
            )
        self.session.apply_update(learning_rate(self.spec, self.plan.steps, self.state.step))
        self.state.position = self.stream.position
        return loss, sum(len(r) for r in rows), n_trained

    def _accumulate(self, rows: list[Row], n_trained: int) -> float:
        """Gradients of this rank's rows of the step, micro-batch by micro-batch; returns its share
        of the step's loss (the shares sum to the step's loss). `n_trained` counts the whole step's
        trained tokens: scaled by the world size, the backend's average over ranks of these
        gradients is the one-process gradient of the global batch."""
        self.session.seed(rank_seed(step_seed(self.spec.seed, self.state.step), self.world))
        micro, total = self.state.micro_batch, 0.0
        for i in range(0, len(rows), micro):
            batch = collate(rows[i : i + micro], self.pad_id, self.session.pad_multiple)
            total += self.session.accumulate(batch, self.world.size / max(n_trained, 1))
        return total / max(n_trained, 1)

    def _halve_micro_batch(self, exc: OutOfMemory) -> None:
        """Out of memory: the same rows again in micro-batches half as large (the loss is normalised
        by the step's trained tokens, so the step is the same), or a refusal saying what to try."""
        s, plan = self.state, self.plan
        accum = -(-plan.micro_batch * plan.grad_accum // s.micro_batch)
        if self.world.several:  # ranks would halve apart and disagree on the step; this one ends the group
            raise DoesNotFit(
                f"out of memory on rank {self.world.rank} at step {s.step + 1} with micro-batch {s.micro_batch} x "
                f"{plan.max_seq_len} tokens ({exc}); several processes do not halve it: resume is not possible "
                f"with a smaller one, start again with --batch-size {max(s.micro_batch // 2, 1)} "
                f"--grad-accum {accum * 2} or --gradient-checkpointing"
            ) from None
        if not self.spec.auto_batch or s.micro_batch == 1:
            raise DoesNotFit(
                f"out of memory at step {s.step + 1} with micro-batch {s.micro_batch} x {plan.max_seq_len} "
                f"tokens ({exc}); try --batch-size {max(s.micro_batch // 2, 1)} --grad-accum {accum * 2}, "
                "a shorter --max-seq-len, --gradient-checkpointing or --auto-batch"
            ) from None
        s.micro_batch //= 2
        accum = -(-plan.micro_batch * plan.grad_accum // s.micro_batch)
        self.emit(Log(f"out of memory: retrying with micro-batch {s.micro_batch} x {accum} steps", "warning"))

    def validation(self) -> Eval:
        """The held-out evaluation whose `measure` the best adapter and early stopping follow:
        here the validation loss."""
        return Eval(self.state.step, self.validation_loss())

    def evaluate(self) -> None:
        """The validation measure (the loss over the first eval_batches micro-batches of the
        planned size); the best adapter so far is kept; patience runs out into early stopping."""
        s, patience = self.state, self.spec.early_stopping_patience
        event = self.validation()
        val = event.measure
        s.last_val_loss = val
        self.emit(event)
        improved = s.best_val_loss is None or val < s.best_val_loss
        out_of_patience = (
            not improved and patience is not None and s.evals_without_improvement + 1 >= patience
        )
        # Rank 0 decides for all: a rank that saved the best adapter (a collective gather under
        # FSDP) or stopped alone would leave the others waiting.
        improved, out_of_patience = self.writers_flags([improved, out_of_patience])
        if improved:
            s.best_val_loss, s.best_step, s.evals_without_improvement = val, s.step, 0
            with self.written_dir(self.run_dir.best_adapter_dir) as tmp:
                self.session.save_adapter(tmp)
            return
        s.evals_without_improvement += 1
        if out_of_patience:
            s.stopped_early = True
            raise StopRequested(
                f"early-stopped ({patience} evaluations without improvement; best step {s.best_step})"
            )

    def validation_loss(self) -> float:
        """The mean token loss over the same validation rows whatever the world size: each rank
        takes its shard, the sums are summed over ranks."""
        rows = self.valid_rows[: self.spec.eval_batches * self.plan.micro_batch * self.world.size]
        total, count = 0.0, 0
        for batch, counted in self.world.even_batches(rows, self.state.micro_batch):
            loss_sum, n = self.session.eval_loss(collate(batch, self.pad_id, self.session.pad_multiple))
            if counted:
                total, count = total + loss_sum, count + n
            self.mark()
        total, count = self.all_reduce_sum([total, float(count)])
        return total / max(count, 1)

    # Several processes: every rank calls these at the same points (they may be collectives).
    def all_reduce_sum(self, values: list[float]) -> list[float]:
        if not self.world.several:
            return list(values)
        sums = self.session.all_reduce_sum(values)
        self.mark()
        return sums

    def writers_flags(self, flags: list[bool]) -> list[bool]:
        """Rank 0's flags on every rank (the others' are ignored): one decision for the group."""
        if not self.world.several:
            return list(flags)
        mine = [float(f) if self.world.is_writer else 0.0 for f in flags]
        return [total > 0 for total in self.all_reduce_sum(mine)]

    def stop_requested(self) -> bool:
        """Rank 0's stop flag, shared so every rank stops before the same step."""
        return self.writers_flags([bool(self.world.is_writer and self.stop())])[0]

    def mark(self, where: str | None = None) -> None:
        """Progress for the watch: every rank passes the same marks in the same order."""
        if self.watch is not None:
            self.watch.progress(where or self.watch.where)

    @contextlib.contextmanager
    def written_dir(self, target: Path) -> Iterator[Path]:
        """Rank 0: a temporary folder renamed to `target` when complete. Other ranks: `target`
        itself, for a collective save that writes nothing there."""
        if not self.world.is_writer:
            yield target
            return
        with atomic_dir(target) as tmp:
            yield tmp

    def checkpoint(self) -> None:
        step, world = self.state.step, self.world
        self.mark(f"the checkpoint of step {step}")
        path = self.run_dir.checkpoint_path(step)
        staged = (
            self.run_dir.checkpoints_dir / f".ranks-{path.name}"
        )  # each rank's file until rank 0 moves it
        if world.several:
            seed = rank_seed(step_seed(self.spec.seed, step), world)
            atomic_write_json(
                staged / RANK_FILE.format(rank=world.rank), rank_state(world, self.state.position, seed)
            )
            self.all_reduce_sum([0.0])  # every rank's file is written
        if world.is_writer:
            require_checkpoint_space(self.run_dir, step, self.session.trainable_bytes())
        with self.written_dir(path) as tmp:
            self.session.save_training_state(tmp)
            if world.is_writer:
                for f in sorted(staged.glob("rank-*.json")):
                    shutil.move(f, tmp / f.name)
                write_state(tmp, self.state.to_dict())  # last: marks the folder complete
        if world.is_writer:
            shutil.rmtree(staged, ignore_errors=True)
        self.saved_step = step
        self.emit(Checkpoint(step, str(path)))

    def finish(self) -> None:
        """The last checkpoint, then the adapter to export: the best by validation loss, else the last."""
        if self.saved_step != self.state.step:
            self.checkpoint()
        self.mark(f"the end of training (step {self.state.step})")
        best = self.run_dir.best_adapter_dir
        # Rank 0's view of the folder decides (another host may not see it): a rank that saved
        # the adapter alone would wait in FSDP's gather for the others.
        use_best = self.writers_flags([self.state.best_step is not None and best.is_dir()])[0]
        if use_best and not self.world.is_writer:
            return  # rank 0 copies the best adapter; nothing collective to take part in
        with self.written_dir(self.run_dir.adapter_dir) as tmp:
            if use_best:
                for f in best.iterdir():
                    shutil.copy2(f, tmp / f.name)
            else:
                self.session.save_adapter(tmp)
