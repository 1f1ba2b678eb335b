"""Which checkpoints to evaluate: resolve folders, check model and tokenizer agree, build variants.

A `--model` folder may be a pretraining output (its `model/` subfolder is used) or any
`save_pretrained` folder holding a config and a tokenizer. Variants evaluated alongside are
written as ordinary checkpoint folders in a work folder: a random initialisation of the same shape
("random-init") and alignment-fine-tuned copies (Cao et al. 2020).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..tokenizer_folder import load_tokenizer as shared_load_tokenizer

RANDOM_INIT = "random-init"
# Checkpoints may pad the embedding matrix past the tokenizer's size (a multiple of 8/64/128 is
# common for speed); more than this many unused rows means the tokenizer belongs to another model.
MAX_VOCAB_PADDING = 128


@dataclass
class Checkpoint:
    name: str
    path: Path


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Loading an MLM checkpoint into a task model or a bare encoder rightly reports a fresh head
    and unused MLM weights; users need not see that report or a loading bar for every seed."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:  # not when they were off (no terminal, --quiet)
            hf_logging.enable_progress_bar()


def load_encoder(folder: Path, device: str = "cpu"):
    """The bare encoder (`AutoModel`) of a checkpoint, in eval mode."""
    from transformers import AutoModel

    with quiet_transformers():
        return AutoModel.from_pretrained(folder).to(device).eval()


def resolve_checkpoint(path: Path) -> Path:
    """The folder holding config.json: `path` itself or its `model/` subfolder (pretrain output)."""
    path = Path(path)
    for candidate in (path / "model", path):
        if (candidate / "config.json").is_file():
            return candidate
    if not path.exists():
        raise UserError(f"model folder {path} does not exist; pass a pretrain output folder or a "
                        "save_pretrained folder")
    raise UserError(f"{path} holds no config.json (nor {path / 'model'}); pass a pretrain output "
                    "folder or a save_pretrained folder")


def name_models(model_dirs: dict[str, Path] | Path | list) -> list[Checkpoint]:
    """Named checkpoints; an unnamed folder is named after itself (its parent for `.../model`).

    Accepts a folder, a list of folders or of (name or None, folder) pairs, or {name: folder}."""
    if isinstance(model_dirs, dict):
        items = list(model_dirs.items())
    else:
        entries = [model_dirs] if isinstance(model_dirs, (str, Path)) else list(model_dirs)
        items = [entry if isinstance(entry, tuple) else (None, Path(entry)) for entry in entries]
    checkpoints, seen = [], set()
    for name, path in items:
        folder = resolve_checkpoint(Path(path))
        if name is None:
            base = Path(path).resolve()
            name = (base.parent if base.name == "model" else base).name or "model"
            unique, n = name, 2
            while unique in seen:
                unique, n = f"{name}-{n}", n + 1
            name = unique
        if name in seen:
            raise UserError(f"two models are named {name!r}; give each --model NAME=DIR a distinct name")
        if not name or "/" in name or name.startswith("."):
            raise UserError(f"model name {name!r} is not usable as a folder name; choose another")
        seen.add(name)
        checkpoints.append(Checkpoint(name, folder))
    return checkpoints


def load_tokenizer(folder: Path):
    return shared_load_tokenizer(folder, hint="the checkpoint folder must hold its tokenizer (save it with "
                                              "tokenizer.save_pretrained)")


def check_checkpoint(checkpoint: Checkpoint):
    """Load the tokenizer and check that the model's vocabulary matches it; returns the tokenizer."""
    try:
        config = json.loads((checkpoint.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"model {checkpoint.name}: cannot read {checkpoint.path / 'config.json'} ({exc})") from None
    tokenizer = load_tokenizer(checkpoint.path)
    vocab_size, tokens = config.get("vocab_size"), len(tokenizer)
    if not isinstance(vocab_size, int):
        raise UserError(f"model {checkpoint.name}: config.json in {checkpoint.path} has no vocab_size")
    if tokens > vocab_size or vocab_size - tokens >= MAX_VOCAB_PADDING:
        raise UserError(f"model {checkpoint.name} ({checkpoint.path}): the model has vocab_size {vocab_size} "
                        f"but its tokenizer has {tokens} tokens; the tokenizer belongs to another model — "
                        "save the model together with the tokenizer it was trained with")
    return tokenizer


def make_random_init(like: Checkpoint, out_dir: Path, *, seed: int) -> Checkpoint:
    """Same config and tokenizer as `like`, freshly initialised weights (the no-pretraining baseline)."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(like.path)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    with quiet_transformers():
        model.save_pretrained(out_dir)
    load_tokenizer(like.path).save_pretrained(out_dir)
    return Checkpoint(RANDOM_INIT, out_dir)


def make_aligned(checkpoint: Checkpoint, out_dir: Path, *, parallel: list[tuple[Path, Path]], steps: int,
                 learning_rate: float, batch_size: int, regularize: bool, max_pairs: int | None,
                 device: str, seed: int) -> tuple[Checkpoint, dict]:
    """Alignment fine-tuning of the encoder on parallel text, saved as a new checkpoint folder."""
    from .alignment import align_model

    missing = [str(p) for pair in parallel for p in pair if not Path(p).is_file()]
    if missing:
        raise UserError(f"alignment: missing parallel file(s): {', '.join(missing)}")
    tokenizer = load_tokenizer(checkpoint.path)
    model = load_encoder(checkpoint.path, device)
    stats = align_model(model, tokenizer, parallel, steps=steps, learning_rate=learning_rate,
                        batch_size=batch_size, regularize=regularize, device=device, seed=seed,
                        max_pairs=max_pairs)
    with quiet_transformers():
        model.to("cpu").save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Checkpoint(checkpoint.name, out_dir), stats
