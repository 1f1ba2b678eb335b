"""Reading small text files whole (task data, parallel sentences): UTF-8, `.xz`/`.bz2`/`.gz` by suffix,
lines split on "\\n" only (real sentences contain U+2028 and other characters `str.splitlines()` breaks
on), and one clear error for a missing or unreadable file."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

from .errors import UserError


def read_text(path: Path) -> str:
    """The whole file as text, decompressing by suffix."""
    path = Path(path)
    opener = {".xz": lzma.open, ".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix)
    try:
        if opener is not None:
            with opener(path, "rt", encoding="utf-8", newline="") as handle:
                return handle.read()
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"data file {path} does not exist; check the path") from None
    except (UnicodeDecodeError, lzma.LZMAError, OSError, EOFError) as exc:
        raise UserError(f"cannot read {path} as UTF-8 text ({exc}); is the file complete?") from None


def read_lines(path: Path) -> list[str]:
    """The file's lines without line ends ("\\r\\n" too); a final empty line is dropped."""
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]
