"""Library output in a process that also draws the screen: transformers' bars and warnings off it."""

from __future__ import annotations


def quiet_libraries() -> None:
    """Merging and evaluating run in this process: keep transformers' progress bars and
    deprecation warnings off the recipe's display (the stages report their own progress)."""
    import warnings

    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
