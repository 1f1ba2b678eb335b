"""`mbert report RUN_DIR`: the offline HTML/Markdown report of a run, optionally logged to W&B."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_command
from ..config import to_plain
from ..progress import info
from ..recipe import run_settings, stage_settings
from .settings import ReportSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub, "report", handler=_report,
        help="write RUN_DIR/report/report.html (one self-contained file: opens offline) and report.md "
             "from whatever stages the run folder holds; with --wandb offline|online also log the run to W&B",
        example="mbert report runs/demo --wandb off   # then open runs/demo/report/report.html")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (run.out of the recipe)")
    parser.add_argument("--out", metavar="DIR", help="report folder (default RUN_DIR/report); it is replaced")
    parser.add_argument("--title", help="report title (default: report.title, 'mbert run')")
    parser.add_argument("--artifacts", action="store_true", default=None,
                        help="with W&B on, also upload the vocabulary and model folders as artifacts")


def _report(args: argparse.Namespace) -> int:
    from .build import build_report
    from .tracking import Tracker
    from .wandb_log import log_run_to_wandb

    settings = stage_settings(args, "report", ReportSettings, {"title": args.title, "wandb_artifacts": args.artifacts})
    run = run_settings(args)
    run_dir = Path(args.run_dir)
    build_report(run_dir, Path(args.out) if args.out else None, settings)
    if run.wandb != "off":  # after the report, so a bad run folder never starts a W&B run
        with Tracker(mode=run.wandb, project=run.wandb_project, stage="report", run_dir=run_dir,
                     config={"report": to_plain(settings)}, group=run_dir.resolve().name) as tracker:
            log_run_to_wandb(run_dir, tracker, settings=settings)
            info(f"W&B: logged to {tracker.run_path}")
    return 0
