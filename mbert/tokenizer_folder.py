"""Loading a tokenizer folder (what `AutoTokenizer.from_pretrained` reads), with one clear error."""

from __future__ import annotations

from pathlib import Path


def load_tokenizer(folder: Path, *, hint: str):
    """The tokenizer in `folder`; a missing folder or one AutoTokenizer cannot load is a UserError
    ending with `hint` (what to pass instead)."""
    from transformers import AutoTokenizer  # slow import: only when used

    from .errors import UserError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"tokenizer folder {folder} does not exist; {hint}")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many types here; all mean "not a tokenizer folder"
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(f"cannot load a tokenizer from {folder} with AutoTokenizer ({type(exc).__name__}: "
                        f"{reason}); {hint}") from None
