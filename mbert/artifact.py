"""The stage contract, said once: what makes an output folder complete, what identifies the settings
and inputs it was made from, and who may write it.

- `manifest.json` is written last (atomically) with `"complete": true`; a folder without it is
  never taken for a finished one (`is_complete`).
- Settings fields are tagged once, in their dataclass (`setting(..., runtime=True)`): runtime-only
  fields (workers, device, logging and checkpoint intervals, W&B) never enter a fingerprint, so
  changing them never redoes, replaces or refuses work (`output_settings`, `differences`).
- While a stage writes a folder it holds a lock beside it (`.NAME.lock`, `filelock`, removed when
  done); a second writer stops at once with one line naming the holder (`writing`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from .atomic import atomic_write_json
from .config import to_plain
from .errors import UserError

MANIFEST = "manifest.json"


# ----------------------------------------------------------------------------- manifests

def read_manifest(folder: Path) -> dict:
    """The folder's manifest, or {} when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(folder: Path, manifest: dict) -> dict:
    """Write `manifest.json` atomically; call it last, when everything it describes is in place."""
    atomic_write_json(Path(folder) / MANIFEST, manifest)
    return manifest


def is_complete(folder: Path, *required: str) -> bool:
    """True when `folder`'s manifest says complete and the `required` files it names exist."""
    folder = Path(folder)
    return read_manifest(folder).get("complete") is True and all((folder / name).exists() for name in required)


# ----------------------------------------------------------------------------- settings and fingerprints

def is_runtime(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("runtime"))


def output_settings(settings: Any) -> Any:
    """`settings` as plain JSON values without its runtime-only fields (at any depth): what
    decides whether two outputs are the same."""
    if dataclasses.is_dataclass(settings):
        return {f.name: output_settings(getattr(settings, f.name)) for f in dataclasses.fields(settings)
                if not is_runtime(f)}
    if isinstance(settings, dict):
        return {str(k): output_settings(v) for k, v in settings.items()}
    if isinstance(settings, (list, tuple)):
        return [output_settings(v) for v in settings]
    if settings is None:
        return None  # kept (unlike in TOML): an unset setting differs from a set one
    return json.loads(json.dumps(to_plain(settings), default=str))


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (settings, input fingerprints, format versions)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def differences(made: dict, wanted: dict, prefix: str = "") -> list[str]:
    """`key = old there, new here` for every output setting of `wanted` that `made` (the settings a
    folder records) does not share; tables are compared key by key."""
    found = []
    for key in sorted(set(wanted) | set(made)):
        if key not in wanted and not isinstance(made[key], dict):
            continue  # a key only the record has: a setting since removed or now runtime-only
        there, here = made.get(key), wanted.get(key)
        if isinstance(there, dict) and isinstance(here, dict):
            found += differences(there, here, f"{prefix}{key}.")
        elif there != here:
            found.append(f"{prefix}{key} = {there!r} there, {here!r} here")
    return found


# ----------------------------------------------------------------------------- one writer per folder

def _lock_path(folder: Path) -> Path:
    # beside the folder, not in it: stages replace their folder whole by renaming a staged copy
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[Path]:
    """Hold `folder`'s lock while a stage writes it; a second writer gets one line naming the holder."""
    folder = Path(folder).absolute()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {folder} ({exc.strerror or exc}); "
                        f"choose another output folder") from None
    path = _lock_path(folder)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{folder} is being written by another process ({_holder(path)}); wait for it to "
                        f"finish, or stop it and run this again (an interrupted stage resumes or "
                        f"restarts safely)") from None
    except OSError as exc:
        raise UserError(f"cannot write in {folder.parent} ({exc.strerror or exc}); choose another output "
                        f"folder or fix its permissions") from None
    try:
        # who holds it, for the message above (filelock >= 4 does not truncate it on a failed acquire)
        program = "mbert" if sys.argv[0].endswith(("mbert", "__main__.py")) else Path(sys.argv[0]).name
        path.write_text(json.dumps({"pid": os.getpid(), "command": " ".join([program, *sys.argv[1:]]),
                                    "since": time.strftime("%Y-%m-%d %H:%M:%S")}), encoding="utf-8")
        yield folder
    finally:
        # removed while still held (filelock then never hands the unlinked file to a waiting
        # process), so no lock file is left behind
        with contextlib.suppress(OSError):
            path.unlink()
        lock.release()


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {holder['pid']}, `{holder['command']}`, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"
