"""Checkpoints: `checkpoints/step-N/` holds everything to resume exactly (model, optimizer,
scheduler, RNG, counters; the data position is the step, since the instance order and masks are
a function of it). Each is written to a temporary folder and renamed; the last K are kept.
`save_training` writes one from a training's objects, `restore_training` loads the newest back
into them (refusing a checkpoint of another model, or settings that cannot change on resume).

`state.pt` holds only tensors and plain Python values, and is read with `weights_only=True`: a
checkpoint is data, never code, whatever a user path points at."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import torch

from ..artifact import output_settings
from ..atomic import atomic_write_json, staging_dir
from ..diskspace import disk_full, free_bytes, require_space
from ..errors import UserError
from .settings import PretrainSettings

_STEP_DIR = re.compile(r"^step-(\d+)$")
# optimisation settings a resumed run may change (they take effect from the next step); any other
# output setting decides the data or model the checkpoint's steps were trained on
RESUME_MAY_CHANGE = {"steps", "learning_rate", "warmup_steps", "weight_decay", "max_grad_norm", "dropout"}


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


# ----------------------------------------------------------------------------- a training's objects

def full_states(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, sharded: bool
                ) -> tuple[dict, dict | None]:
    """Whole (unsharded) model and optimizer state; with FSDP every process must call it."""
    if not sharded:
        return model.state_dict(), optimizer.state_dict() if optimizer is not None else None
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return (get_model_state_dict(model, options=full),
            get_optimizer_state_dict(model, optimizer, options=full) if optimizer is not None else None)


def save_training(root: Path, step: int, *, model_state: dict, optimizer_state: dict, scheduler,
                  tokens_seen: int, meta: dict, keep: int) -> Path:
    """Checkpoint `step` of a training (states from `full_states`; `meta` goes to meta.json)."""
    state = {"model": model_state, "optimizer": optimizer_state, "scheduler": scheduler.state_dict(),
             "rng": rng_state(), "step": step, "tokens_seen": tokens_seen}
    return save_checkpoint(root, step, state, {**meta, "tokens_seen": tokens_seen}, keep)


def restore_training(path: Path, step: int, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler, sharded: bool, fingerprint: dict, settings: PretrainSettings
                     ) -> tuple[int, dict, dict[str, tuple]]:
    """Load checkpoint `path` (of `step`) into model, optimizer, scheduler and the RNG. This run's
    learning rate, warm-up and weight decay apply from the next step (see `resume_changes`).
    Returns (tokens seen, the checkpoint's meta, {setting: (its value, this run's)} changed)."""
    state, meta = load_checkpoint(path, fingerprint)
    changed = resume_changes(meta, settings, path, step)
    # this run's optimisation settings, not the checkpoint's: loading the states below brings back its own
    fresh = [{"weight_decay": g["weight_decay"], "initial_lr": g["initial_lr"]} for g in optimizer.param_groups]
    if sharded:
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                             set_optimizer_state_dict)

        full = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, state["model"], options=full)
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=full)
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for group, values in zip(optimizer.param_groups, fresh):
        group.update(values)
    scheduler.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)  # what LambdaLR computes; unchanged when nothing changed
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    set_rng_state(state["rng"])
    return int(state["tokens_seen"]), meta, changed


def resume_changes(meta: dict, settings: PretrainSettings, path: Path, step: int) -> dict[str, tuple]:
    """{setting: (checkpoint's value, this run's)} for the output settings that differ; refuses
    a change that cannot take effect on resume."""
    made = meta.get("settings")
    if not isinstance(made, dict):  # written before checkpoints recorded their settings
        return {}
    now = output_settings(settings)
    changed = {k: (made.get(k), now.get(k)) for k in sorted(set(made) | set(now)) if made.get(k) != now.get(k)}
    refused = [k for k in changed if k not in RESUME_MAY_CHANGE]
    if refused:
        detail = ", ".join(f"{k}: checkpoint {changed[k][0]!r} vs now {changed[k][1]!r}" for k in refused)
        raise UserError(f"cannot resume {path} with other settings ({detail}): they decide what its {step} "
                        f"steps were trained on; resume with the checkpoint's values (only "
                        f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change), or start afresh with another --out")
    return changed
