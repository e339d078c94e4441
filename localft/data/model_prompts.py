"""`--prompts model`: a local GGUF (through llama-cpp-python) writes the request each post answers.

Answers are cached per model file and post text, so a re-import only asks about new posts.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from localft.atomic import atomic_write_json
from localft.config import DataSpec
from localft.data.posts import Post
from localft.data.prompts import keyword_request, request_noun
from localft.errors import DataError
from localft.events import Emit, Stage
from localft.paths import cache_dir

# A few-shot completion prompt works with any model (no chat template, no instruction following
# needed): the model only finishes "Write a ... about", which even a 135M model does sensibly.
FEW_SHOT = (
    "Post: Our standup was 40 minutes. We moved updates to writing and now it takes 10. Try it.\n"
    "Request: Write a {noun} about shorter standups and written status updates.\n\n"
    "Post: I failed my driving test three times. The fourth time I stopped trying to be perfect.\n"
    "Request: Write a {noun} about failing, persistence and letting go of perfectionism.\n\n"
)
INSTRUCTION = FEW_SHOT  # part of the cache key: change the prompt, get fresh answers
MAX_POST_CHARS = 1200  # the request needs the gist, not the whole post


def prompt_model_path(spec: DataSpec) -> Path:
    """The GGUF that writes requests: `spec.prompt_model`, else the embedded model's GGUF."""
    if spec.prompt_model:
        path = Path(spec.prompt_model).expanduser()
        if not path.is_file() or path.suffix.lower() != ".gguf":
            raise DataError(f"prompt model {path} is not a .gguf file; pass --prompt-model PATH.gguf")
        return path
    from localft.plan.catalog import embedded_gguf_path

    return embedded_gguf_path()


def _cache_path(model: Path) -> Path:
    stat = model.stat()
    key = hashlib.sha256(f"{model.resolve()}|{stat.st_size}|{INSTRUCTION}".encode()).hexdigest()[:16]
    return cache_dir() / "prompts" / f"{model.stem}-{key}.json"


def _post_key(post: Post, platform: str) -> str:
    return hashlib.sha256(f"{platform}\0{post.title}\0{post.text}".encode()).hexdigest()


def clean_request(stem: str, completion: str, fallback: str) -> str:
    """`stem` + the model's words up to the first line or sentence end; the keyword request if too short."""
    words = completion.strip().splitlines()[0] if completion.strip() else ""
    words = re.split(r"(?<=[.!?])\s", words, maxsplit=1)[0]
    words = re.sub(r"\[(link|email|phone|address)\]?", "", words).strip().strip("\"'“”:;,").rstrip(".!?:")
    if len(words) < 3 or len(words) > 200:
        return fallback
    return f"{stem} {words}."


def model_requests(posts: list[Post], platform: str, spec: DataSpec, emit: Emit | None = None) -> list[str]:
    model = prompt_model_path(spec)
    cache_file = _cache_path(model)
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}  # a damaged cache is only lost time, never an error
    keys = [_post_key(p, p.platform or platform) for p in posts]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    done = len(posts) - len(missing)
    if emit:
        emit(Stage(name="prompts", done=done, total=len(posts), detail=f"{done} cached"))
    if missing:
        llm = _load(model)
        try:
            for n, i in enumerate(missing, start=1):
                noun = request_noun(posts[i], platform)
                stem = f"Write {'an' if noun[0] in 'aeiouAEIOU' else 'a'} {noun} about"
                cache[keys[i]] = _ask(llm, posts[i], platform, noun, stem, spec.seed)
                if n % 20 == 0 or n == len(missing):
                    atomic_write_json(cache_file, cache)
                if emit:
                    emit(Stage(name="prompts", done=done + n, total=len(posts), detail="writing requests"))
        finally:
            llm.close()
    return [cache[k] for k in keys]


def _ask(llm, post: Post, platform: str, noun: str, stem: str, seed: int) -> str:
    fallback = keyword_request(post, platform)
    if post.title:  # a title says it better than any summary
        return fallback
    text = " ".join(post.text[:MAX_POST_CHARS].split())
    prompt = FEW_SHOT.format(noun=noun) + f"Post: {text}\nRequest: {stem}"
    out = llm.create_completion(
        prompt, max_tokens=20, temperature=0.0, repeat_penalty=1.3, stop=["\n", "Post:"], seed=seed
    )
    choice = out["choices"][0]
    words = choice["text"] or ""
    if choice.get("finish_reason") == "length":  # cut mid-phrase: keep up to the last comma
        words = words.rsplit(",", 1)[0]
    return clean_request(stem, words, fallback)


def _load(model: Path):
    from localft.errors import ExportError
    from localft.export.llamacpp import load_llama

    try:
        return load_llama(model, n_ctx=1024, seed=0)
    except ExportError as exc:
        raise DataError(
            f"cannot use {model} to write requests ({exc}); pass another --prompt-model"
        ) from None
