"""A full disk ends a command with one line naming the folder and the space it needs, instead of
an `OSError: [Errno 28]` traceback. Outputs are written under staging names and renamed into place
(see `atomic`), so whatever was complete before the disk filled up stays intact."""

from __future__ import annotations

import contextlib
import errno
import shutil
from pathlib import Path
from typing import Callable, Iterator

from .errors import UserError

_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", "os error 28", "errno 28")


class DiskFull(UserError):
    """The disk holding an output folder has too little free space."""


def free_bytes(folder: Path) -> int:
    """Free space on the disk that holds `folder` (or would hold it, when it does not exist yet)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def human(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def disk_full(folder: Path, needed: int, what: str) -> DiskFull:
    return DiskFull(f"not enough disk space in {folder} for {what}: it needs about {human(needed)} and "
                    f"{human(free_bytes(folder))} is free; free some space or write to another folder")


def is_no_space(exc: BaseException) -> bool:
    """Whether `exc` is a write that failed for lack of space. Libraries in other languages (Rust
    `tokenizers`, C++ `pyarrow`) raise it as a plain exception that only names the error."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
        return True
    return any(text in str(exc) for text in _NO_SPACE_TEXT)


def require_space(folder: Path, needed: int, what: str) -> None:
    """Refuse up front when the free space is known to be too little."""
    if free_bytes(folder) < needed:
        raise disk_full(folder, needed, what)


@contextlib.contextmanager
def reported_as_disk_full(folder: Path, needed: int | Callable[[], int], what: str) -> Iterator[None]:
    """Turn a write that fails for lack of space inside the block into one `DiskFull` line."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, UserError) or not is_no_space(exc):
            raise
        raise disk_full(folder, needed() if callable(needed) else needed, what) from None
