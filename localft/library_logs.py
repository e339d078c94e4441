"""Libraries' warnings, logging and progress bars go to a log, each message once, never to the
screen: the `localft` process writes them to LOCALFT_HOME/logs/libraries.log, a training worker
(whose stderr is the run's train.log) to its stderr."""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

# Read by huggingface_hub and transformers when they load: no tqdm bars ("Loading weights", downloads).
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
_handler: logging.Handler | None = None


def route_library_output(log: Path | TextIO) -> None:
    """Send Python warnings and every library logger (bitsandbytes' kernel
    notice, transformers, huggingface_hub) at WARNING and above to `log`; calling again retargets."""
    global _handler
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if isinstance(log, Path):
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = logging.FileHandler(log, encoding="utf-8", delay=True)
        except OSError:  # no writable home: the command's own checks say so; the noise is dropped
            handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    _handler = handler
    root.addHandler(handler)  # with a handler on the root, logging's stderr fallback stays silent
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # Python's default filters already show each warning once per place
    if "transformers" in sys.modules:
        _quiet_transformers()
    elif not any(isinstance(f, _TransformersHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TransformersHook())


def _quiet_transformers() -> None:
    """transformers gives itself a stderr handler when it loads: hand its records to the root's."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()


class _TransformersHook(importlib.abc.MetaPathFinder):
    """Quiets transformers right after it is first imported, wherever that happens: importing it
    up front would cost every command about 2 s."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "transformers":
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_quiet(module) -> None:
                exec_module(module)
                _quiet_transformers()

            spec.loader.exec_module = exec_then_quiet
        return spec


def quiet_libraries() -> None:
    """Merging and evaluating run in this process: keep transformers' progress bars and
    deprecation warnings off the recipe's display (the stages report their own progress)."""
    import warnings

    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
