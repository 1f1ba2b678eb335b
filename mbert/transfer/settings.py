"""Settings of the evaluation stage (`[evaluate]` in a recipe).

The suite file (`eval/*.toml`, schema in `suite.py`) says what to evaluate; these settings say how
to run it here and may narrow or override the suite (seeds, device, caps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import setting

# the data-kit suite, eval/default.toml, shipped as package data (its `data` defaults to ../shared/data
# beside a source checkout; set MBERT_DATA elsewhere)
DEFAULT_SUITE = Path(__file__).resolve().parents[1] / "data" / "default.toml"


@dataclass
class EvaluateSettings:
    suite: Path = setting(DEFAULT_SUITE, path="file", help="evaluation suite (TOML)")
    seeds: list[int] = setting([], help="fine-tuning seeds; empty = the suite's seeds")
    tasks: list[str] = setting([], help="run only these tasks of the suite; empty = all")
    device: str = setting("auto", runtime=True, help="torch device: auto (cuda when available), cpu, cuda, cuda:1, ...")
    threads: int = setting(0, min=0, runtime=True, help="CPU threads for torch; 0 = torch's default (1 is fastest for "
                                          "tiny models on a busy machine)")
    workers: int = setting(1, min=1, runtime=True, help="processes fine-tuning at once, each with `threads` torch "
                           "threads (0 threads = cores / workers); the results are those of one process")
    max_train_examples: int | None = setting(None, min=1, help="cap on training examples per task (overrides the suite)")
    max_eval_examples: int | None = setting(None, min=1, help="cap on test examples per language (overrides the suite)")
    random_init: bool = setting(False, help="also evaluate a random initialisation of the first model's shape")
    compare: dict[str, Path] = setting({}, path="dir", help="reference checkpoints evaluated beside the "
                                       "models, name = folder, e.g. {mbert = \"models/bert-base-multilingual-cased\"}")
    reuse: bool = setting(True, runtime=True, help="reuse finished fine-tuning runs kept beside the output "
                          "(.OUT.units/: an interrupted or edited evaluation redoes only what is missing); "
                          "--no-reuse recomputes them all")
    analysis: bool | None = setting(None, help="run the language-neutrality analysis; unset = as the suite says")
