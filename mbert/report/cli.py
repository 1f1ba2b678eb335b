"""`mbert report RUN_DIR`: the offline HTML/Markdown report of a run, optionally logged to W&B with the
specification of its W&B Report; `--publish` turns that specification into the Report on W&B."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import to_plain
from ..errors import ConfigError
from ..flags import add_command, add_settings_flags, flag_name, given
from ..progress import info, summary
from ..recipe import stage_settings
from ..run_settings import RunSettings
from .settings import ReportSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub, "report", handler=_report,
        help="write RUN_DIR/report/report.html (one self-contained file: opens offline) and report.md "
             "from whatever stages the run folder holds; with --wandb offline|online also log the run to W&B and "
             "write the W&B Report's specification (wandb_report.json; published right away when online)",
        example="mbert report runs/demo --wandb off   # then open runs/demo/report/report.html")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (run.out of the recipe)")
    parser.add_argument("--out", metavar="DIR", help="report folder (default RUN_DIR/report); it is replaced")
    parser.add_argument("--publish", action="store_true",
                        help="only create or update the W&B Report from the report folder's wandb_report.json "
                             "(written with W&B on), once its run is on W&B (`wandb sync`); needs an API key")
    add_settings_flags(parser, "report", ReportSettings)


def _report(args: argparse.Namespace) -> int:
    from .build import build_report
    from ..tracking import Tracker
    from .wandb_report import report_to_wandb

    if args.publish:
        return _publish(args)
    settings, run = stage_settings(args, "report", ReportSettings)
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "report"
    build_report(run_dir, out, settings)
    if run.wandb != "off":  # after the report, so a bad run folder never starts a W&B run
        with Tracker(mode=run.wandb, project=run.wandb_project, stage="report", run_dir=run_dir,
                     config={"report": to_plain(settings)}, group=run_dir.resolve().name) as tracker:
            report_to_wandb(run_dir, out, tracker, settings=settings)
            info(f"W&B: logged to {tracker.run_path}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from .wandb_publish import SPEC_FILE, publish, read_spec

    building = [flag_name(cls, name) for section, cls in (("report", ReportSettings), ("run", RunSettings))
                for name in given(args, section)]
    building += [flag for flag, value in (("--set", args.set), ("--recipe", args.recipe)) if value]
    if building:
        raise ConfigError(f"--publish publishes the specification as written, and {', '.join(building)} only "
                          f"act when building the report: drop them, or build first without --publish")
    run_dir = Path(args.run_dir)
    path = (Path(args.out) if args.out else run_dir / "report") / SPEC_FILE
    summary(f"W&B Report: {publish(read_spec(path, run_dir), path)}")
    return 0
