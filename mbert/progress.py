"""Progress bars that stay quiet with --quiet or when stderr is not a terminal; summaries always print."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def bar(iterable: Iterable[T] | None = None, *, total: int | float | None = None, desc: str = "",
        unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar, disabled when quiet or not attached to a terminal."""
    disable = _quiet or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                **kwargs)


def info(message: str) -> None:
    """A progress line on stderr (suppressed when quiet)."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


def summary(message: str) -> None:
    """The closing paragraph of a command: always printed, on stdout."""
    print(message, flush=True)
