"""What a `device` setting means, decided in one place for every stage and benchmark."""

from __future__ import annotations

import torch

from .errors import ConfigError, UserError


def resolve_device(name: str, key: str = "device") -> str:
    """`auto` is `cuda` when a GPU is visible, else `cpu`; `cpu`, `cuda` and `cuda:N` stay as given.
    Anything else, or a GPU that is not there, is one clear error naming `key`."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key} = {name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{key} = {name!r} but no GPU is visible; use auto or cpu")
    return name
