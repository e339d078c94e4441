"""A streaming chat with one GGUF (or a base GGUF plus a LoRA adapter GGUF) through llama.cpp, with
the chat template inside the file: what `localft chat`, the Chat screen and the export's stop check
(`gguf_reply`) use."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localft.chat.template import render_chat
from localft.config import ChatSpec, build_spec
from localft.errors import ExportError


@dataclass
class GenerationStats:
    tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = ""  # "stop" (end-of-turn token), "length", or "interrupted"

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class ChatSession:
    """A conversation with one GGUF, or with `lora_path` (a LoRA adapter GGUF) applied on it.
    `stream()` yields text pieces as llama.cpp produces them. Sampling comes from `spec` (ChatSpec's
    defaults) with `sampling` keywords over it."""

    def __init__(
        self,
        gguf_path: Path,
        spec: ChatSpec | None = None,
        *,
        n_ctx: int = 4096,
        seed: int = 0,
        log_path: Path | None = None,
        allow_foreign: bool = False,
        n_threads: int | None = None,
        lora_path: Path | None = None,
        name: str | None = None,
        **sampling,
    ):
        from localft.export.gguf import LOCALFT_KEY
        from localft.export.llamacpp import load_llama

        spec = build_spec(ChatSpec, {**(spec or ChatSpec()).model_dump(), **sampling}, where="chat settings")
        self.path = Path(gguf_path)
        self.adapter = Path(lora_path) if lora_path else None
        self.name = name or self.path.name
        self.llm = load_llama(
            self.path, n_ctx=n_ctx, log_path=log_path, seed=seed, n_threads=n_threads, lora_path=self.adapter
        )
        self.log_path = log_path
        meta = self.llm.metadata
        # A localft adapter vouches for the base it was trained on (the user's own Ollama file).
        if not allow_foreign and not (
            adapter_made_by_localft(self.adapter) if self.adapter else LOCALFT_KEY in meta
        ):
            self.close()
            what = self.adapter.name if self.adapter else self.path.name
            raise ExportError(f"{what} was not made by localft; pass --any-gguf to load it anyway")
        self.template = meta.get("tokenizer.chat_template")
        if not self.template:
            self.close()
            raise ExportError(f"{self.path.name} has no chat template; re-export it from a folder with one")
        self.bos_id, self.eos_id = self.llm.token_bos(), self.llm.token_eos()
        self.bos = self.llm.detokenize([self.bos_id], special=True).decode() if self.bos_id >= 0 else ""
        self.eos = self.llm.detokenize([self.eos_id], special=True).decode() if self.eos_id >= 0 else ""
        self.add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self.system, self.temperature, self.top_p = spec.system, spec.temperature, spec.top_p
        self.max_tokens, self.seed = spec.max_tokens, seed
        self.messages: list[dict] = []
        self.last = GenerationStats()
        self.last_draft = ""
        self._stop = threading.Event()

    def conversation(self) -> list[dict]:
        """The history as the template takes it: the system prompt opens the first user turn where
        the template has no system role (as training rendered it)."""
        from localft.data.chat_render import fold_into_first_user, renders_system

        messages = self.history()
        if self.system and not renders_system(self._render, (self.template, self.bos, self.eos)):
            return fold_into_first_user(messages) or messages
        return messages

    def history(self) -> list[dict]:
        """The system prompt, if any, and every turn so far."""
        return ([{"role": "system", "content": self.system}] if self.system else []) + self.messages

    def _render(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        return render_chat(
            self.template, messages, bos=self.bos, eos=self.eos, add_generation_prompt=add_generation_prompt
        )

    def prompt_tokens(self, messages: list[dict] | None = None) -> list[int]:
        text = self._render(messages or self.conversation(), add_generation_prompt=True)
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self.add_bos and (not tokens or tokens[0] != self.bos_id):
            tokens.insert(0, self.bos_id)
        return tokens

    def stream(self, user_text: str) -> Iterator[str]:
        """Add the user turn, yield the reply piece by piece, and keep it in the history."""
        self.messages.append({"role": "user", "content": user_text})
        try:
            reply = yield from self._generate(self.seed, self.temperature)
        except ExportError:
            self.messages.pop()
            raise
        self.messages.append({"role": "assistant", "content": reply})

    def draft(self, user_text: str, seed: int, min_temperature: float = 0.0) -> Iterator[str]:
        """A reply to `user_text` that is not kept (`last_draft` holds it): one of the drafts a
        person picks from, sampled with its own seed."""
        self.messages.append({"role": "user", "content": user_text})
        try:
            self.last_draft = yield from self._generate(seed, max(self.temperature, min_temperature))
        finally:
            self.messages.pop()

    def keep(self, user_text: str, reply: str) -> None:
        """Continue the chat from an exchange chosen outside `stream` (a picked draft)."""
        self.messages += [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]

    def _generate(self, seed: int, temperature: float) -> Iterator[str]:
        """Stream a reply to the conversation so far (it ends with a user turn); returns the text."""
        from localft.export.llamacpp import native_stderr_to

        self._stop.clear()
        tokens = self.prompt_tokens()
        if len(tokens) + 1 >= self.llm.n_ctx():
            raise ExportError("the conversation no longer fits the context window; /reset to start over")
        reply, stats = [], GenerationStats(finish_reason="length")
        start = time.perf_counter()
        pieces = self.llm.create_completion(
            tokens,
            max_tokens=min(self.max_tokens, self.llm.n_ctx() - len(tokens)),
            temperature=temperature,
            top_p=self.top_p,
            seed=seed,
            stream=True,
        )
        while True:
            # Redirect only around llama.cpp's own work, never across a yield to the caller.
            with native_stderr_to(self.log_path):
                chunk = next(pieces, None)
            if chunk is None:
                break
            choice = chunk["choices"][0]
            if choice["text"]:
                stats.tokens += 1
                reply.append(choice["text"])
                yield choice["text"]
            if choice.get("finish_reason"):
                stats.finish_reason = choice["finish_reason"]
            if self._stop.is_set():
                stats.finish_reason = "interrupted"
                pieces.close()
                break
        stats.seconds = time.perf_counter() - start
        self.last = stats
        return "".join(reply)

    def reply(self, user_text: str) -> str:
        return "".join(self.stream(user_text))

    def reset(self) -> None:
        self.messages = []

    def stop(self) -> None:
        """Ask a running `stream()` to end after the current piece (safe from another thread)."""
        self._stop.set()

    def save(self, path: Path) -> Path:
        from localft.atomic import atomic_write_json

        adapter = {"adapter": str(self.adapter)} if self.adapter else {}
        atomic_write_json(Path(path), {"model": str(self.path), **adapter, "messages": self.history()})
        return Path(path)

    def close(self) -> None:
        from localft.export.llamacpp import close_llama

        close_llama(self.llm)


def adapter_made_by_localft(adapter: Path) -> bool:
    """Whether localft wrote this adapter GGUF (its version key in the header; llama-cpp-python
    shows no adapter's metadata)."""
    from localft.export.gguf import LOCALFT_KEY
    from localft.plan.gguf_header import GgufHeaderError, read_gguf_header

    try:
        return LOCALFT_KEY in read_gguf_header(adapter).metadata
    except (OSError, GgufHeaderError):
        return False


def gguf_reply(
    gguf: Path,
    messages: list[dict],
    *,
    max_tokens: int = 128,
    temperature: float = 0.0,
    log_path: Path | None = None,
) -> tuple[str, str]:
    """Reply to a chat through llama.cpp with the GGUF's own template: (text, finish_reason)."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    session = ChatSession(
        gguf, system=system, temperature=temperature, max_tokens=max_tokens, log_path=log_path,
        allow_foreign=True,
    )  # fmt: skip
    try:
        session.messages = [m for m in messages[:-1] if m["role"] != "system"]
        text = session.reply(messages[-1]["content"])
        return text, session.last.finish_reason
    finally:
        session.close()
