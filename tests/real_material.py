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


def hf_tokenizer_dir(name: str) -> Path:
    """An HF tokenizer folder rebuilt by transformers from `ggml-vocab-<name>.gguf`, cached per
    transformers version (the rebuild takes 20-35 s for the 150k-token vocabularies)."""
    import transformers
    from filelock import FileLock

    target = CACHE_ROOT / f"hf-tokenizers-{transformers.__version__}-lcp{llama_cpp_version()}" / name
    if (target / "tokenizer_config.json").is_file():
        return target
    source = vocab_file(name)
    if not source.is_file():
        raise FileNotFoundError(f"llama.cpp's material has no {source.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "tokenizer_config.json").is_file():
            return target
        from huggingface_hub.errors import StrictDataclassError
        from transformers import AutoTokenizer

        with contextlib.redirect_stderr(io.StringIO()):
            try:
                tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            except (ValueError, KeyError, TypeError, StrictDataclassError):
                tok = _tokenizer_only(source)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


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
    from gguf import GGUFReader

    return len(GGUFReader(vocab_file(name)).fields["tokenizer.ggml.tokens"].data)
