"""Checkpoints: `checkpoints/step-N/` holds everything to resume exactly (model, optimizer,
scheduler, RNG, counters; the data position is the step, since the instance order and masks are
a function of it). Each is written to a temporary folder and renamed; the last K are kept.

`state.pt` holds only tensors and plain Python values, and is read with `weights_only=True`: a
checkpoint is data, never code, whatever a user path points at."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import torch

from ..atomic import atomic_write_json, staging_dir
from ..diskspace import disk_full, free_bytes, require_space
from ..errors import UserError

_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_dirs(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / "meta.json").is_file() and (path / "state.pt").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_leftovers(root: Path) -> None:
    """Hidden staging folders of checkpoint writes that a killed process never finished."""
    for path in Path(root).glob(".step-*"):
        if path.is_dir() and path.name.endswith((".partial", ".old")):
            shutil.rmtree(path, ignore_errors=True)


def _nbytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


def save_checkpoint(root: Path, step: int, state: dict, meta: dict, keep: int) -> Path:
    final = Path(root) / f"step-{step}"
    remove_leftovers(root)
    needed, what = _nbytes(state) + (1 << 20), f"checkpoint step-{step}"  # + its structure and meta.json
    require_space(root, needed, what)  # the older checkpoints are removed only once this one is complete
    try:
        with staging_dir(final) as tmp:
            torch.save(state, tmp / "state.pt")
            atomic_write_json(tmp / "meta.json", {"step": step, **meta})  # meta.json marks it complete
    except RuntimeError:  # torch's writer reports a short write as "unexpected pos N vs M"
        if free_bytes(root) < needed:
            raise disk_full(root, needed, what) from None
        raise
    for _, old in checkpoint_dirs(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, fingerprint: dict) -> tuple[dict, dict]:
    """(state, meta) of a checkpoint, refusing one written for another model or vocabulary."""
    meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    theirs = meta.get("fingerprint", {})
    different = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
    if different:
        detail = ", ".join(f"{k}: checkpoint {theirs.get(k)!r} vs now {fingerprint.get(k)!r}"
                           for k in different[:4])
        raise UserError(f"checkpoint {path} was written for another model ({detail}); resume with "
                        f"the same model/vocab settings, or start fresh with another --out")
    try:
        state = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # holds Python objects: loading it could run code, so it is not loaded
        raise UserError(f"checkpoint {path} holds Python objects besides tensors (an older mbert, or not "
                        f"written by mbert) and was not loaded, since unpickling can run code; start "
                        f"afresh with another --out, or remove it to resume from the one before") from None
    except Exception as exc:  # truncated or foreign file
        raise UserError(f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to "
                        f"resume from the one before") from None
    return state, meta


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
