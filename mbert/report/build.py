"""`build_report`: collect a run folder, render report.html (self-contained) and report.md + figures/.

The output folder is assembled in a staging folder and renamed into place, with manifest.json
written last, so an interrupted build never leaves a report that looks complete."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..artifact import MANIFEST, is_complete as artifact_complete, write_manifest, writing
from ..atomic import atomic_write_text, staging_dir
from ..config import write_resolved
from ..errors import UserError
from ..progress import info, summary
from .collect import RunResults, collect_run
from .document import Document
from .html import render_html
from .markdown import FIGURES_DIR, figure_path, render_markdown
from .sections import build_document
from .settings import ReportSettings
from .wandb_publish import SPEC_FILE

REPORT_OUTPUTS = {"report.html", "report.md", FIGURES_DIR, MANIFEST, "resolved_config.toml", SPEC_FILE}
STAGE_FOLDERS = "corpus/clean, corpus/mixture, vocab, pretrain, eval/<suite>"


def is_complete(out_dir: Path) -> bool:
    """True when `out_dir` holds a finished report (manifest.json with complete=true and report.html)."""
    return artifact_complete(out_dir, "report.html")


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"report folder {out} is a file; pass a folder with --out")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in REPORT_OUTPUTS)
        if foreign:
            raise UserError(f"report folder {out} holds other files ({', '.join(foreign[:3])}); the report "
                            f"replaces its folder, so pass an empty or new folder with --out")


def _unique_figure_names(document: Document) -> None:
    seen: dict[str, int] = {}
    for figure in document.figures():
        count = seen.get(figure.name, 0)
        seen[figure.name] = count + 1
        if count:
            figure.name = f"{figure.name}_{count + 1}"


def _readable(folder: Path) -> None:
    """Temp files are created private (0600); a report is meant to be shared: apply the umask instead."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def build_report(run_dir: Path, out_dir: Path | None = None, settings: ReportSettings | None = None,
                 tracker=None) -> Path:
    """Write `out_dir` (default RUN_DIR/report): report.html, report.md, figures/*.png; returns report.html.

    With an enabled `tracker` the collected results are also logged to W&B, and the W&B Report's
    specification is written next to report.html (`report_to_wandb`)."""
    start = time.perf_counter()
    settings = settings or ReportSettings()
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    results: RunResults = collect_run(run_dir)
    if results.empty:
        raise UserError(f"{run_dir} holds no stage output (looked for {STAGE_FOLDERS}); run a stage first, "
                        f"e.g. `mbert run`, or pass the run folder itself")
    _check_out_dir(out)
    info(f"[report] {len(results.stages)} stage outputs found in {run_dir}: drawing figures")
    document = build_document(results, settings)
    _unique_figure_names(document)
    page = render_html(document)
    with writing(out), staging_dir(out) as tmp:
        for figure in document.figures():
            path = tmp / figure_path(figure)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(figure.png)
        atomic_write_text(tmp / "report.md", render_markdown(document))
        atomic_write_text(tmp / "report.html", page)
        write_resolved(tmp, {"report": settings})
        write_manifest(tmp, {
            "stage": "report", "run_dir": str(run_dir.resolve()),
            "sections": [s.title for s in document.sections], "figures": len(document.figures()),
            "stages": {s.stage: s.complete for s in results.stages}, "html_bytes": len(page.encode()),
            "complete": True})
        _readable(tmp)
    if tracker is not None and getattr(tracker, "enabled", False):
        from .wandb_report import report_to_wandb
        report_to_wandb(run_dir, out, tracker, results=results, settings=settings)
    html_path = out / "report.html"
    summary(f"Report written in {time.perf_counter() - start:.1f}s: {html_path} (self-contained, "
            f"{len(page.encode()) / 1e6:.1f} MB, {len(document.sections)} sections, {len(document.figures())} "
            f"figures) and {out / 'report.md'} with {out / FIGURES_DIR}/. Stages: "
            + ", ".join(f"{s.stage}{'' if s.complete else ' (incomplete)'}" for s in results.stages) + ".")
    return html_path
