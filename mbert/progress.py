"""Progress bars that stay quiet with --quiet or when stderr is not a terminal; summaries always print."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet
    if not bars_shown():
        hide_library_bars()


def bars_shown() -> bool:
    """Progress bars are drawn on a terminal only, and not with --quiet."""
    return not _quiet and sys.stderr.isatty()


def hide_library_bars() -> None:
    """Silence the bars that transformers, huggingface_hub and datasets draw themselves (e.g.
    "Writing model shards" in `save_pretrained`). They read these variables when imported, here and
    in child processes (tokenizer workers, torchrun); libraries already imported are told directly."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars
        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        from datasets.utils import disable_progress_bars as disable_datasets_bars
        disable_datasets_bars()


def bar(iterable: Iterable[T] | None = None, *, total: int | float | None = None, desc: str = "",
        unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar, disabled when quiet or not attached to a terminal."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not bars_shown(), dynamic_ncols=True,
                **kwargs)


def info(message: str) -> None:
    """A progress line on stderr (suppressed when quiet)."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A result the user should check (printed even when quiet, on stderr)."""
    print(f"mbert: warning: {message}", file=sys.stderr, flush=True)


def summary(message: str) -> None:
    """The closing paragraph of a command: always printed, on stdout."""
    print(message, flush=True)
