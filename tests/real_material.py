"""Real tokenizers and chat templates, offline: llama.cpp's own test material.

The source distribution of the installed llama-cpp-python carries llama.cpp's vocabulary files
(`ggml-vocab-<name>.gguf`, with `.inp` test strings and the `.out` ids llama.cpp must give) and
real chat templates (`templates/*.jinja`). It is fetched once per machine from the package
registry into the test cache (never committed); a test that needs it skips with the reason when
the registry cannot be reached. HF tokenizers rebuilt from those files are cached too.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CACHE_ROOT

SEPARATOR = "\n__ggml_vocab_test__\n"
MEMBER_MARK = "/vendor/llama.cpp/models/"


def llama_cpp_version() -> str:
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llama-cpp-python is not installed; its source distribution holds the real material")


def material_dir() -> Path:
    """The `models/` folder of llama.cpp's test material (vocab files and templates/)."""
    from filelock import FileLock

    version = llama_cpp_version()
    target = CACHE_ROOT / f"llama.cpp-material-{version}"
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / ".complete").is_file():
            return target
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--quiet", f"llama-cpp-python=={version}", "-d", tmp]  # fmt: skip
            try:
                subprocess.run(cmd, check=True, capture_output=True, timeout=600)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                err = getattr(exc, "stderr", b"") or b""
                pytest.skip(
                    f"cannot fetch llama-cpp-python=={version}'s source distribution from the package "
                    f"registry (real tokenizers and templates): {err.decode(errors='replace')[-300:]}"
                )
            archive = next(Path(tmp).glob("*.tar.gz"))
            shutil.rmtree(target, ignore_errors=True)
            _extract_models(archive, target)
        (target / ".complete").write_text(version)
    return target


def _extract_models(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if MEMBER_MARK not in member.name or not member.isfile():
                continue
            rel = member.name.split(MEMBER_MARK, 1)[1]
            if not (rel.startswith("ggml-vocab-") or rel.startswith("templates/")):
                continue
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)


def template(name: str) -> str:
    """A real chat template by file stem, e.g. 'Qwen-Qwen3-0.6B' or 'google-gemma-2-2b-it'."""
    path = material_dir() / "templates" / f"{name}.jinja"
    if not path.is_file():
        raise FileNotFoundError(f"no template {name}.jinja in llama.cpp's material")
    return path.read_text(encoding="utf-8")


def template_names() -> list[str]:
    return sorted(p.stem for p in (material_dir() / "templates").glob("*.jinja"))


def vocab_file(name: str) -> Path:
    """`ggml-vocab-<name>.gguf`, e.g. 'llama-bpe', 'qwen2', 'phi-3', 'llama-spm'."""
    return material_dir() / f"ggml-vocab-{name}.gguf"


def vocab_cases(name: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's tokenizer test strings for a vocabulary and the ids llama.cpp must give."""
    base = vocab_file(name)
    inputs = Path(f"{base}.inp").read_text(encoding="utf-8").split(SEPARATOR)
    outputs = Path(f"{base}.out").read_text(encoding="utf-8").split("\n")  # one line per string
    return [(text, [int(x) for x in ids.split()]) for text, ids in zip(inputs, outputs, strict=False)]


def _tokenizer_cache(name: str) -> Path:
    import transformers

    return CACHE_ROOT / f"hf-tokenizers-{transformers.__version__}-lcp{llama_cpp_version()}" / name


def _build_once(target: Path, build) -> Path:
    """`target`, built by `build(tmp_folder)` the first time on this machine (under a lock, then renamed)."""
    from filelock import FileLock

    if (target / "tokenizer_config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "tokenizer_config.json").is_file():
            return target
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        build(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def hf_tokenizer_dir(name: str) -> Path:
    """An HF tokenizer folder rebuilt by transformers from `ggml-vocab-<name>.gguf`, cached per
    transformers version (the rebuild takes 20-35 s for the 150k-token vocabularies)."""
    source = vocab_file(name)

    def build(tmp: Path) -> None:
        if not source.is_file():
            raise FileNotFoundError(f"llama.cpp's material has no {source.name}")
        from huggingface_hub.errors import StrictDataclassError
        from transformers import AutoTokenizer

        with contextlib.redirect_stderr(io.StringIO()):
            try:
                tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            except (ValueError, KeyError, TypeError, StrictDataclassError):
                tok = _tokenizer_only(source)
        tok.save_pretrained(tmp)

    return _build_once(_tokenizer_cache(name), build)


_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


def gguf_metadata(path: Path) -> dict:
    """A GGUF file's metadata (scalars, strings and arrays of them), read with struct: gguf-py's reader
    takes minutes on a 262k-token vocabulary."""
    import struct

    data = Path(path).read_bytes()
    if data[:4] != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file")
    pos = 24  # magic, version, tensor count, metadata count

    def read(kind: int):
        nonlocal pos
        if kind == 8:
            (n,) = struct.unpack_from("<Q", data, pos)
            pos += 8 + n
            return data[pos - n : pos].decode("utf-8", errors="surrogateescape")
        if kind == 9:
            item, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            return [read(item) for _ in range(count)]
        fmt = _GGUF_SCALARS[kind]
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value

    (count,) = struct.unpack_from("<Q", data, 16)
    meta = {}
    for _ in range(count):
        key = read(8)
        (kind,) = struct.unpack_from("<I", data, pos)
        pos += 4
        meta[key] = read(kind)
    return meta


def sentencepiece_bpe_tokenizer_dir(name: str, tokenizer_class: str) -> Path:
    """An HF tokenizer folder built from the tokens and merges of `ggml-vocab-<name>.gguf`, for a
    SentencePiece-style BPE vocabulary transformers cannot rebuild itself (gemma-4): spaces become
    '▁', byte fallback, control tokens special, user-defined tokens added; the class named decides
    the rest, as the model's own tokenizer_config.json would. Cached like hf_tokenizer_dir."""
    import json

    def build(tmp: Path) -> None:
        from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

        meta = gguf_metadata(vocab_file(name))
        tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
        roles = {"bos": "bos", "eos": "eos", "unknown": "unk", "padding": "pad"}
        special = {
            role: tokens[meta[f"tokenizer.ggml.{key}_token_id"]]
            for key, role in roles.items()
            if f"tokenizer.ggml.{key}_token_id" in meta
        }
        merges = [(m[: m.index(" ", 1)], m[m.index(" ", 1) + 1 :]) for m in meta["tokenizer.ggml.merges"]]
        vocab = {t: i for i, t in enumerate(tokens)}
        tok = Tokenizer(
            models.BPE(vocab, merges, byte_fallback=True, fuse_unk=True, unk_token=special.get("unk"))
        )
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.decoder = decoders.Sequence(
            [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
        )
        marked = list(zip(tokens, types, strict=True))
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, k in marked if k == 3])
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, k in marked if k == 4])
        add_bos = bool(meta.get("tokenizer.ggml.add_bos_token")) and "bos" in special
        if add_bos:
            bos = special["bos"]
            tok.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
            )
        tok.save(str(tmp / "tokenizer.json"))
        config = {f"{role}_token": text for role, text in special.items()}
        config |= {"tokenizer_class": tokenizer_class, "add_bos_token": add_bos}
        if "tokenizer.chat_template" in meta:
            (tmp / "chat_template.jinja").write_text(meta["tokenizer.chat_template"], encoding="utf-8")
        (tmp / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")

    return _build_once(_tokenizer_cache(f"{name}-spm"), build)


def _tokenizer_only(source: Path):
    """The tokenizer of a vocabulary file whose model config transformers cannot parse (gemma-4's
    has per-layer lists): transformers' GGUF tokenizer converter alone, without the config."""
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.gguf import convert_gguf_tokenizer, get_gguf_tokenizer

    architecture, tokenizer_dict, tokenizer_config = get_gguf_tokenizer(str(source))
    backend, extra = convert_gguf_tokenizer(architecture, tokenizer_dict)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **tokenizer_config, **extra)


def vocab_size(name: str) -> int:
    """How many tokens `ggml-vocab-<name>.gguf` holds (an HF rebuild may append one of its own)."""
    return len(gguf_metadata(vocab_file(name))["tokenizer.ggml.tokens"])
