"""A pretraining run's folder: what it holds, whether a command may use, continue or replace it
(work is never deleted implicitly), and its log.

    OUT/checkpoints/step-N/   OUT/train_log.jsonl   OUT/data/ (token store, instance index)
    OUT/model/ (save_pretrained)   OUT/resolved_config.toml   OUT/manifest.json (written last)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..artifact import differences, is_complete as artifact_complete, output_settings, read_manifest
from ..atomic import atomic_write_text
from ..corpus.layout import find_corpus
from ..errors import UserError
from ..progress import info
from .checkpoint import checkpoint_dirs
from .distributed import Distributed
from .inputs import input_fingerprint, load_tokenizer
from .settings import PretrainSettings

LOG_FILE = "train_log.jsonl"


def holds_run(out_dir: Path) -> bool:
    """Whether `out_dir` already holds a pretraining run (finished or not)."""
    out_dir = Path(out_dir)
    return is_complete(out_dir) or bool(checkpoint_dirs(out_dir / "checkpoints")) \
        or (out_dir / LOG_FILE).exists()


def is_complete(out_dir: Path) -> bool:
    return artifact_complete(out_dir)


def run_differences(out_dir: Path, corpus_dir: Path, vocab_dir: Path, settings: PretrainSettings,
                    inputs: str | None = None) -> list[str] | None:
    """How the run kept in `out_dir` (finished, or else its newest checkpoint) differs from a run of
    `settings` on these inputs, in output settings only: an empty list means it is that run (to use
    or resume); None means `out_dir` holds neither a finished run nor a checkpoint."""
    out_dir = Path(out_dir)
    found = checkpoint_dirs(out_dir / "checkpoints")
    if is_complete(out_dir):
        manifest = read_manifest(out_dir)
        made, made_inputs = manifest.get("settings", {}), manifest.get("store", {}).get("fingerprint")
    elif found:
        meta = json.loads((found[-1][1] / "meta.json").read_text(encoding="utf-8"))
        made, made_inputs = meta.get("settings"), meta.get("inputs")
        if not isinstance(made, dict):
            return ["its checkpoints were written by an older mbert that did not record their settings"]
    else:
        return None
    found_differences = differences(made, output_settings(settings))
    if inputs is None:
        inputs = input_fingerprint(find_corpus(corpus_dir), load_tokenizer(vocab_dir))
    if made_inputs != inputs:
        found_differences.append("it was trained on another corpus or vocabulary")
    return found_differences


def claim_out_dir(out: Path, corpus_dir: Path, vocab_dir: Path, settings: PretrainSettings, inputs: str, *,
                  resume: bool | None, replace: bool, redo_hint: str, dist: Distributed) -> tuple[bool, dict | None]:
    """Decide what an existing `out` means: (whether to resume from its checkpoints, the manifest of
    a finished run that already is what was asked for). replace=True: start afresh; resume=True:
    continue it; False: refuse to touch it; None (`mbert run`, the Python API default): use or
    continue a run with the same output settings and inputs, and refuse any other (never deleted
    implicitly; `redo_hint` names the option that replaces it)."""
    complete = is_complete(out)
    earlier = holds_run(out)
    found = run_differences(out, corpus_dir, vocab_dir, settings, inputs) \
        if earlier and resume is None and not replace else None
    dist.barrier()  # every process has looked before the first one changes anything
    if not earlier:
        return bool(resume), None
    if replace:
        if dist.main:
            info(f"{out} holds a pretraining run: replacing it, as asked")
            (out / "manifest.json").unlink(missing_ok=True)  # first: no longer looks complete
            for name in ("checkpoints", "model"):
                shutil.rmtree(out / name, ignore_errors=True)
            (out / LOG_FILE).unlink(missing_ok=True)
        dist.barrier()
        return False, None
    if resume is False:
        raise UserError(f"{out} already holds a pretraining run; pass --resume to continue "
                        f"it, --force to replace it, or choose another --out")
    if resume is None:
        if found:
            what = "a finished pretraining" if complete else "an unfinished pretraining"
            raise UserError(f"{out} holds {what} with other output settings or inputs "
                            f"({'; '.join(found)}); it is kept: make the settings match to "
                            f"{'use' if complete else 'resume'} it, pass {redo_hint} to replace "
                            f"it, or choose another output folder")
        if complete:
            return False, read_manifest(out)
        return found is not None, None  # checkpoints to continue, or only a log to restart
    if complete:
        done = read_manifest(out).get("steps", 0)
        if done >= settings.steps:
            raise UserError(f"{out} already holds a finished run of {done} steps; raise "
                            f"--steps to train further or choose another --out")
        if dist.main:
            (out / "manifest.json").unlink()  # training on: the run is no longer complete
    return True, None


class TrainLog:
    """OUT/train_log.jsonl: one JSON object per logged step."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOG_FILE

    def restart(self) -> None:
        atomic_write_text(self.path, "")

    def keep_until(self, step: int) -> None:
        """Drop the lines written after `step` (a resumed run redoes those steps)."""
        kept = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").split("\n"):
                if line.strip() and json.loads(line)["step"] <= step:
                    kept.append(line)
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
