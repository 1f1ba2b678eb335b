"""Settings of the report stage (`[report]` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import setting


@dataclass
class ReportSettings:
    title: str = setting("mbert run", help="report title")
    source_language: str = setting("en", help="fine-tuning language of zero-shot transfer, used when the "
                                              "evaluation manifest does not name it (transfer gap = source - average)")
    figure_dpi: int = setting(110, min=50, max=400, help="resolution of the plots")
    include_configs: bool = setting(True, help="show every stage's resolved_config.toml in the report")
    max_curve_points: int = setting(2000, min=10, help="training-curve points per metric (evenly subsampled)")
    wandb_artifacts: bool = setting(False, runtime=True, flag="artifacts",
                                    help="with W&B on: also upload the vocabulary and model as artifacts")
