"""Publish a W&B Report specification (`wandb_report.report_spec`) with `wandb-workspaces`.

`to_report` builds the `wandb_workspaces.reports.v2.Report` the JSON describes (offline; every
block and panel is a class of that library, every panel grid shows the specification's one run
set); `publish` saves it to W&B, which needs an API key and the run already there."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from .collect import read_json

SPEC_FILE = "wandb_report.json"
SPEC_FORMAT = "mbert-wandb-report/1"
BLOCKS = ("H1", "H2", "H3", "P", "MarkdownBlock", "TableOfContents", "PanelGrid")
PANELS = ("LinePlot", "BarPlot", "MediaBrowser", "WeavePanelSummaryTable", "CustomChart")


def read_spec(path: Path, run_dir: Path) -> dict:
    """The specification at `path`, written for the run folder `run_dir` (named in errors)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no W&B Report specification at {path}: write it with `mbert report {run_dir} --wandb "
                        f"offline` (W&B on), then `wandb sync` its run and publish with `mbert report {run_dir} "
                        f"--publish`")
    spec = read_json(path)
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise UserError(f"{path} is not a {SPEC_FORMAT} specification; write it again with "
                        f"`mbert report {run_dir} --wandb offline`")
    return spec


def to_report(spec: dict, entity: str | None = None) -> Any:
    """The `wandb_workspaces.reports.v2.Report` the specification describes (nothing is sent)."""
    import wandb_workspaces.reports.v2 as wr

    def make(item: dict, allowed: tuple[str, ...]) -> Any:
        if item.get("type") not in allowed:
            raise ValueError(f"unknown {item.get('type')!r}, expected one of {', '.join(allowed)}")
        arguments = {k: v for k, v in item.items() if k not in ("type", "layout", "panels")}
        if "layout" in item:
            arguments["layout"] = wr.Layout(**item["layout"])
        if item["type"] == "PanelGrid":  # every grid shows the one run that logged its keys
            arguments.update(runsets=[wr.Runset(**spec["runset"])], panels=[make(p, PANELS) for p in item["panels"]])
        return getattr(wr, item["type"])(**arguments)

    try:
        return wr.Report(project=spec["project"], entity=entity or spec.get("entity") or "", title=spec["title"],
                         description=spec["description"], blocks=[make(b, BLOCKS) for b in spec["blocks"]],
                         width="fluid")
    except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or foreign file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"the W&B Report specification is not valid ({reason}); write it again with "
                        f"`mbert report {spec.get('run_dir', 'RUN_DIR')} --wandb offline`") from None


def publish(spec: dict, path: Path) -> str:
    """Create the Report on W&B, or update the project's Report of the same title; returns its URL.
    `path` is where the specification lies (named in errors, which keep it for a retry)."""
    import wandb
    from wandb.apis.public.runs import RunNotFoundError

    try:
        api = wandb.Api()
    except wandb.errors.UsageError:
        raise UserError(f"no W&B API key: run `wandb login` (or set WANDB_API_KEY), then `mbert report "
                        f"{spec['run_dir']} --publish` publishes {path}") from None
    entity = spec.get("entity") or os.environ.get("WANDB_ENTITY") or api.default_entity
    run = spec["run"]
    try:
        api.run(f"{entity}/{spec['project']}/{run['id']}")
    except RunNotFoundError:
        raise UserError(f"the run {entity}/{spec['project']}/{run['id']} that the Report shows is not on W&B: "
                        f"upload it with `wandb sync {run['folder']}`, then `mbert report {spec['run_dir']} "
                        f"--publish`") from None
    report = to_report(spec, entity)
    try:
        existing = next((r for r in api.reports(f"{entity}/{spec['project']}") if r.display_name == spec["title"]),
                        None)
        if existing is not None:
            report.id = existing.id  # update the group's Report rather than add another
        report.save()
        return report.url
    except (wandb.errors.Error, ValueError, OSError) as exc:  # the service refused or could not be reached
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"W&B Report not published ({reason}); {path} is kept: retry with "
                        f"`mbert report {spec['run_dir']} --publish`") from None
