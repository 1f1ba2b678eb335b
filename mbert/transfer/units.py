"""Finished fine-tuning runs of an evaluation, kept beside its output folder so that an interrupted or
edited evaluation redoes only what is missing (the stage contract: work is never lost implicitly).

The output folder itself is staged and replaced whole (`atomic.staging_dir`), so without this an
interrupted hour of fine-tuning would be thrown away, and adding a seed or a task would redo every
other one. A unit is one fine-tuning run (model, task data, hyper-parameters, seed: its scores and,
for the first seed, its predictions) or one learning-rate choice; it is stored as
`.OUT.units/<key>.json`, where the key is a fingerprint of everything its result depends on — the
checkpoint's files, the task's examples, the resolved hyper-parameters, the seed and `UNIT_FORMAT`
(raised whenever fine-tuning or scoring changes what a unit would hold). Runtime settings (device,
threads) do not enter it. `--no-reuse` recomputes every unit (and overwrites it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..artifact import fingerprint, output_settings
from ..atomic import atomic_write_json

UNIT_FORMAT = 1


def units_folder(out_dir: Path) -> Path:
    """Beside the output folder, not in it: the output is replaced whole when it is rewritten."""
    out_dir = Path(out_dir).absolute()
    return out_dir.parent / f".{out_dir.name}.units"


def checkpoint_print(folder: Path) -> str:
    """A hash of every file of a checkpoint folder (weights, config, tokenizer)."""
    digest = hashlib.sha256()
    folder = Path(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def examples_print(*examples: Any) -> str:
    """A hash of task examples (frozen dataclasses of strings), as read after every cap and mapping."""
    blob = json.dumps(examples, default=vars, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_key(model: str, data: str, hyper, seed: int) -> str:
    """The unit of one fine-tuning run; `hyper` has its rate resolved (a rate chosen from a list
    and the same rate given alone make the same run)."""
    resolved = dataclasses.replace(hyper, learning_rates=None)
    return fingerprint(UNIT_FORMAT, "run", model, data, output_settings(resolved), seed)


def choice_key(model: str, data: str, hyper, seed: int) -> str:
    """The unit of a learning-rate choice among `hyper.learning_rates` (made with the first seed)."""
    return fingerprint(UNIT_FORMAT, "learning-rate", model, data, output_settings(hyper), seed)


class Units:
    """Read and write units; with `reuse=False` nothing is read back, but every unit is still written
    (units computed by this evaluation's own worker processes are read back either way)."""

    def __init__(self, folder: Path, *, reuse: bool = True):
        self.folder, self.reuse = Path(folder), reuse
        self.reused = self.computed = 0
        self.written: list[str] = []  # keys put by this object
        self.fresh: set[str] = set()  # keys computed by workers of this evaluation (see `adopt`)

    def get(self, key: str, *, needs: str | None = None) -> dict | None:
        """The unit stored under `key`, if it holds `needs` (e.g. the first seed's predictions)."""
        found = self.peek(key, needs=needs)
        self.reused += found is not None and key not in self.fresh
        return found

    def peek(self, key: str, *, needs: str | None = None) -> dict | None:
        """As `get`, without counting the unit as reused (to plan work)."""
        if not (self.reuse or key in self.fresh):
            return None
        try:
            found = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(found, dict) or (needs is not None and needs not in found):
            return None
        return found

    def put(self, key: str, value: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.folder / f"{key}.json", value)
        self.computed += 1
        self.written.append(key)

    def adopt(self, keys: list[str]) -> None:
        """Count units that a worker process computed for this evaluation as computed here."""
        self.fresh.update(keys)
        self.computed += len(keys)
