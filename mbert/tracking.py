"""Weights & Biases, optional: every stage logs through a `Tracker`; mode "off" makes it a no-op.

Without an API key "online" falls back to offline (sync later with `wandb sync`). All stages of
one `mbert run` share a W&B group (the run folder's name), so they appear together. The tracker
logs W&B's own kinds (numbers, tables, images, bar charts, artifacts) and knows nothing of what a
stage produces: each stage shapes its results itself (evaluation: `transfer/wandb_metrics.py`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .progress import info


class Tracker:
    def __init__(self, *, mode: str, project: str, stage: str, run_dir: Path, config: dict | None = None,
                 group: str | None = None) -> None:
        self.mode = mode
        self.run = None
        if mode == "off":
            return
        if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _has_netrc_key()):
            info("W&B: no API key found, logging offline (upload later with `wandb sync`)")
            mode = "offline"
        import wandb  # imported only when used: it is slow to import

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, group=group or Path(run_dir).resolve().name,
                              job_type=stage, name=f"{group or Path(run_dir).resolve().name}-{stage}",
                              dir=str(run_dir), mode=mode, config=config or {}, reinit="create_new",
                              settings=wandb.Settings(silent=True, console="off"))

    @property
    def enabled(self) -> bool:
        return self.run is not None

    @property
    def run_path(self) -> Path | None:
        """Folder of this run's files (holds the `.wandb` log in offline mode)."""
        return Path(self.run.dir).parent if self.run is not None else None

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(metrics, step=step)

    def table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.run is not None:
            import wandb
            self.run.log({key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def image(self, key: str, path: Path) -> None:
        if self.run is not None and Path(path).is_file():
            import wandb
            self.run.log({key: wandb.Image(str(path))})

    def summary(self, metrics: dict[str, Any]) -> None:
        if self.run is not None:
            for key, value in metrics.items():
                self.run.summary[key] = value

    def artifact(self, name: str, kind: str, path: Path) -> None:
        if self.run is not None:
            import wandb
            art = wandb.Artifact(name, type=kind)
            art.add_dir(str(path)) if Path(path).is_dir() else art.add_file(str(path))
            self.run.log_artifact(art)

    def define_step(self, pattern: str, step_key: str) -> None:
        """Plot metrics matching `pattern` (e.g. "pretrain/*") against `step_key` instead of W&B's own
        step, so curves can be logged after other data (W&B's step may only increase)."""
        if self.run is not None:
            self.run.define_metric(step_key)
            self.run.define_metric(pattern, step_metric=step_key)

    def image_png(self, key: str, png: bytes, caption: str = "") -> None:
        """An image given as PNG bytes (e.g. a figure drawn in memory)."""
        if self.run is not None:
            import io

            import wandb
            from PIL import Image
            self.run.log({key: wandb.Image(Image.open(io.BytesIO(png)), caption=caption or None)})

    def bar_chart(self, key: str, labels: Sequence[str], values: Sequence[float], *, title: str = "",
                  label_name: str = "language", value_name: str = "score") -> None:
        """A native W&B bar chart (`wandb.plot.bar`); its data table is logged as `<key>_table`."""
        if self.run is not None:
            import wandb
            table = wandb.Table(columns=[label_name, value_name], data=[[l, v] for l, v in zip(labels, values)])
            self.run.log({key: wandb.plot.bar(table, label_name, value_name, title=title or key)})

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def _has_netrc_key() -> bool:
    netrc = Path.home() / ".netrc"
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
