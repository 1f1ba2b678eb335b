"""W&B: `mbert report RUN --wandb offline` logs the run; the offline `.wandb` file is read back with
`mbert.report.wandb_reader` (LevelDB-style log of `wandb_internal_pb2.Record`s) to check that the
per-language tables, charts and summary metrics are really in it, and that the W&B Report's
specification points at them. One offline run is shared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_report import LANGS, make_run, write

from mbert.cli import main
from mbert.errors import UserError
from mbert.report.build import build_report
from mbert.report.sections import HEADLINE
from mbert.report.settings import ReportSettings
from mbert.report.wandb_reader import (chart_definitions, find_run_file, history_rows, load_table, logged_tables,
                                       read_records, summary_values, wait_until_finished)
from mbert.report.wandb_publish import SPEC_FILE, SPEC_FORMAT, publish, to_report
from mbert.tracking import Tracker
from mbert.transfer.wandb_metrics import log_eval_metrics


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory, data_dir):
    run = make_run(tmp_path_factory.mktemp("wandb"), data_dir)
    assert main(["report", str(run), "--wandb", "offline", "--artifacts", "--set", "report.figure_dpi=50"]) == 0
    run_file = wait_until_finished(find_run_file(run / "wandb"))
    return run, run_file, summary_values(run_file), logged_tables(run_file)


def test_summary_metrics_are_in_the_run_file(offline_run):
    _, _, summary, _ = offline_run
    assert summary["eval/default/xnli/de"] == pytest.approx(70.0)
    assert summary["eval/default/xnli/target_average"] == pytest.approx(65.0)
    assert summary["eval/default/xnli/transfer_gap"] == pytest.approx(15.0)
    assert "eval/default/tatoeba/transfer_gap" not in summary  # no English result: no gap
    assert summary["eval/default/tlm/xnli/target_average"] == pytest.approx(70.0)  # compared models
    assert summary["eval/default/target_average"] == pytest.approx((65.0 + 81.0 + 30.0) / 3)
    assert summary["corpus/languages"] == len(LANGS) and summary["corpus/smoothing"] == 0.7
    assert summary["analysis/default/tlm/best_centered"] == 40.0
    assert summary["analysis/default/tlm/best_centered_layer"] == 1
    assert summary["pretrain/final/loss"] == pytest.approx(5.0) and summary["vocab/vocab_size"] == 1000


def test_per_language_tables_are_logged(offline_run):
    _, run_file, _, tables = offline_run
    xnli = tables["eval/default/xnli/table"]
    assert xnli["nrows"] == 3
    content = load_table(run_file, xnli)
    assert content["columns"] == ["language", "role", "mean", "std", "n_seeds", "seeds"]
    assert [row[0] for row in content["data"]] == ["en", "de", "fr"]
    assert content["data"][1][2:5] == [70.0, 2.0, 3]
    corpus = load_table(run_file, tables["corpus/clean"])
    assert sorted(row[0] for row in corpus["data"]) == sorted(LANGS)
    assert corpus["columns"][:4] == ["language", "documents", "sentences", "characters"]
    assert tables["corpus/mixture"]["nrows"] == len(LANGS) and tables["vocab/report"]["nrows"] == len(LANGS)
    assert tables["eval/default/heatmap/table"]["nrows"] == 3 + 2 + 2  # task × language cells
    assert "eval/default/xnli/bar_table" in tables  # the data of the wandb.plot.bar chart
    assert tables["analysis/default/mlm/retrieval_by_layer_table"]["nrows"] == 3


def test_curves_images_and_artifacts_are_logged(offline_run):
    _, run_file, _, _ = offline_run
    rows = history_rows(run_file)
    losses = [row["pretrain/loss"] for row in rows if "pretrain/loss" in row]
    assert losses[0] == pytest.approx(8.8) and losses[-1] == pytest.approx(5.0) and len(losses) == 20
    assert any(row.get("pretrain/heldout_loss/de") == pytest.approx(6.5) for row in rows)
    images = {key.rsplit(".", 1)[0] for row in rows for key, value in row.items()
              if key.endswith("._type") and value == "image-file"}
    assert {"eval/default/heatmap", "corpus/smoothing_plot", "pretrain/curves",
            "analysis/default/mlm/centroids", "analysis/default/tlm/retrieval_by_layer"} <= images
    artifacts = [r.artifact.type for r in read_records(run_file) if r.WhichOneof("record_type") == "artifact"]
    assert "vocabulary" in artifacts


def test_build_report_logs_to_the_tracker_it_is_given(tmp_path, data_dir):
    """The `mbert run` path: build_report(run, out, settings, tracker) logs the run it reports."""
    run = make_run(tmp_path, data_dir, stages=("evaluate",))
    with Tracker(mode="offline", project="mbert-test", stage="report", run_dir=run) as tracker:
        build_report(run, run / "report", ReportSettings(figure_dpi=50), tracker)
        run_file_dir = tracker.run_path
    summary = summary_values(wait_until_finished(find_run_file(run_file_dir)))
    assert summary["eval/default/pawsx/transfer_gap"] == pytest.approx(9.0)
    assert summary["eval/default/mlm/tatoeba/target_average"] == pytest.approx(30.0)


def test_tracker_off_is_a_no_op(tmp_path):
    with Tracker(mode="off", project="mbert", stage="report", run_dir=tmp_path) as tracker:
        assert not tracker.enabled and tracker.run_path is None
        log_eval_metrics(tracker, {"xnli": {"en": {"mean": 1.0, "std": 0.0, "seeds": [1.0]}}})
        tracker.bar_chart("x", ["en"], [1.0])
        tracker.image_png("h", b"not drawn when off")
    assert list(tmp_path.iterdir()) == []


def test_reader_rejects_a_file_that_is_not_a_wandb_log(tmp_path):
    bogus = tmp_path / "run-x.wandb"
    bogus.write_bytes(b"not a wandb file at all")
    with pytest.raises(UserError, match="not a W&B run file"):
        summary_values(bogus)
    with pytest.raises(UserError, match="no W&B run file"):
        find_run_file(tmp_path / "nothing")


# ----------------------------------------------------------------------------- the W&B Report

def spec_panels(spec: dict) -> list[dict]:
    return [panel for block in spec["blocks"] for panel in block.get("panels", [])]


def task_tables(spec: dict) -> dict[str, tuple[list[str], list[str]]]:
    """task -> (model columns, language rows) of the Markdown table under each "Task <task>" heading."""
    tables, blocks = {}, spec["blocks"]
    for heading, table in zip(blocks, blocks[1:]):
        if heading["type"].startswith("H") and heading["text"].startswith("Task "):
            lines = [line.strip("|").split("|") for line in table["text"].splitlines() if line.startswith("|")]
            models = [cell.strip() for cell in lines[0][1:]]
            languages = [row[0].strip().strip("*") for row in lines[2:]
                         if row[0].strip() not in ("target average", "transfer gap")]
            tables[heading["text"][len("Task "):]] = (models, languages)
    return tables


def assert_spec_names_every_result(spec: dict, suite_dir: Path) -> None:
    """Every task, model and language of the suite's metrics.json files is in the Report."""
    models = {p.parent.name: json.loads(p.read_text()) for p in sorted((suite_dir / "models").glob("*/metrics.json"))}
    expected = models or {"score": json.loads((suite_dir / "metrics.json").read_text())}
    tables = task_tables(spec)
    assert set(tables) == {task for metrics in expected.values() for task in metrics}
    for task, (columns, languages) in tables.items():
        assert columns == list(expected)
        assert sorted(languages) == sorted({lang for m in expected.values() for lang in m.get(task, {})})
    charts = {p["query"]["summaryTable"]["tableKey"] for p in spec_panels(spec) if p["type"] == "CustomChart"}
    prefix = f"eval/{suite_dir.name}"
    assert charts == ({f"{prefix}/{model}/{task}/bar_table" for model, m in models.items() for task in m} if models
                      else {f"{prefix}/{task}/bar_table" for task in expected["score"]})


def assert_panels_point_at_logged_keys(spec: dict) -> None:
    """Each panel reads keys that the Report's run (its run set's only run) really logged."""
    run_file = wait_until_finished(find_run_file(Path(spec["run"]["folder"])))
    run_ids = [r.run.run_id for r in read_records(run_file) if r.WhichOneof("record_type") == "run"]
    assert run_ids == [spec["run"]["id"]] and spec["runset"]["filters"] == f"ID = '{run_ids[0]}'"
    summary, rows, tables = summary_values(run_file), history_rows(run_file), logged_tables(run_file)
    history = {key for row in rows for key in row}
    images = {key.rsplit(".", 1)[0] for row in rows for key, value in row.items()
              if key.endswith("._type") and value == "image-file"}
    charts = {c["userQuery"]["queryFields"][0]["fields"][-1]["args"][0]["value"]: c
              for c in chart_definitions(run_file).values()}
    for panel in spec_panels(spec):
        if panel["type"] == "LinePlot":
            assert {panel["x"], *panel["y"]} <= history, panel
        elif panel["type"] == "BarPlot":
            assert all(isinstance(summary.get(key), (int, float)) for key in panel["metrics"]), panel
        elif panel["type"] == "WeavePanelSummaryTable":
            assert panel["table_name"] in tables, panel
        elif panel["type"] == "MediaBrowser":
            assert set(panel["media_keys"]) <= images, panel
        else:
            chart = charts[panel["query"]["summaryTable"]["tableKey"]]
            assert (panel["chart_name"], panel["chart_fields"]) == (chart["panelDefId"], chart["fieldSettings"])


def test_report_spec_names_every_task_model_and_language(offline_run):
    run, _, _, _ = offline_run
    spec = json.loads((run / "report" / SPEC_FILE).read_text())
    assert spec["title"] == "mbert run: run-fixture" and spec["project"] == "mbert" and spec["entity"] is None
    assert_spec_names_every_result(spec, run / "eval" / "default")
    overview = next(b["text"] for b in spec["blocks"] if b["type"] == "MarkdownBlock")
    assert "5 languages (de, en, fr, is, ja)" in overview and "S = 0.7" in overview and "1,000 entries" in overview
    assert "| is | 0.2086 | 0.2264 | 1.09 |" in overview  # p_L, q_L, ratio of the mixture manifest
    assert "**Pretrained models**: model (20 steps)." in overview
    assert "scored in 4 languages (de, en, fr, ja); models mlm, tlm." in overview


def test_report_spec_panels_point_at_keys_the_run_logged(offline_run):
    run, _, _, _ = offline_run
    spec = json.loads((run / "report" / SPEC_FILE).read_text())
    assert_panels_point_at_logged_keys(spec)
    kinds = {p["type"] for p in spec_panels(spec)}
    assert kinds == {"LinePlot", "BarPlot", "MediaBrowser", "WeavePanelSummaryTable", "CustomChart"}
    keys = [k for p in spec_panels(spec) if p["type"] == "LinePlot" for k in p["y"]]
    assert {"pretrain/loss", "pretrain/heldout_loss/en", "pretrain/heldout_loss/de"} <= set(keys)
    comparison = [p["metrics"] for p in spec_panels(spec) if p.get("title") == "xnli: target average per model"]
    assert comparison == [["eval/default/mlm/xnli/target_average", "eval/default/tlm/xnli/target_average"]]


def test_report_sections_follow_the_offline_report(offline_run):
    run, _, _, _ = offline_run
    spec = json.loads((run / "report" / SPEC_FILE).read_text())
    offline_sections = json.loads((run / "report" / "manifest.json").read_text())["sections"]
    h1 = [b["text"] for b in spec["blocks"] if b["type"] == "H1"]
    assert h1 == [title for title in offline_sections if title in h1]
    assert h1 == ["Overview", HEADLINE, "Corpus", "Tokenizer", "Pretraining", "Zero-shot evaluation",
                  "Model comparison", "Language neutrality"]
    headline = spec["blocks"][[b.get("text") for b in spec["blocks"]].index(HEADLINE) + 1]["text"]
    rows = [line for line in headline.splitlines() if line.startswith("| ")]
    assert rows[1] == "| xnli | 80.0 ± 1.0 | 65.0 ± 1.2 | 85.0 ± 1.0 | 65.0 ± 1.2 |"
    offline = (run / "report" / "report.md").read_text()
    assert all(row in offline for row in rows[1:])  # the same numbers as the offline report's headline table
    bars = [p["metrics"] for p in spec_panels(spec) if p.get("title") == "tatoeba: every model per language"]
    assert bars == [[f"eval/default/{model}/tatoeba/{lang}" for lang in ("de", "ja") for model in ("mlm", "tlm")]]


def test_report_spec_round_trips_through_wandb_workspaces(offline_run):
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces.reports.v2 import internal

    run, _, _, _ = offline_run
    spec = json.loads((run / "report" / SPEC_FILE).read_text())
    report = to_report(spec, entity="someone")
    stored = report._to_model().model_dump_json(by_alias=True, exclude_none=True)  # what save() sends
    back = wr.Report._from_model(internal.ReportViewspec.model_validate_json(stored))
    assert (back.title, back.entity, back.project) == (spec["title"], "someone", "mbert")
    assert [type(b).__name__ for b in back.blocks] == [b["type"] for b in spec["blocks"]]
    grids = [b for b in back.blocks if isinstance(b, wr.PanelGrid)]
    assert {str(g.runsets[0].filters) for g in grids} == {f"Metric(\"ID\") == '{spec['run']['id']}'"}
    panels = [p for g in grids for p in g.panels]
    assert [type(p).__name__ for p in panels] == [p["type"] for p in spec_panels(spec)]
    for panel, want in zip(panels, spec_panels(spec)):
        if want["type"] == "WeavePanelSummaryTable":
            assert panel.table_name == want["table_name"]
        elif want["type"] == "MediaBrowser":
            assert panel.media_keys == want["media_keys"]
        elif want["type"] == "CustomChart":
            assert panel.query["summaryTable"] == want["query"]["summaryTable"]
            assert (panel.chart_name, panel.chart_fields) == (want["chart_name"], want["chart_fields"])
        elif want["type"] == "BarPlot":
            assert [m.name for m in panel.metrics] == want["metrics"]
        else:
            assert [m.name for m in panel.y] == want["y"] and panel.x.name == want["x"]


def test_online_without_a_key_logs_offline_and_says_how_to_publish(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key
    run = make_run(tmp_path, data_dir, stages=("evaluate",))
    shutil.rmtree(run / "eval" / "default" / "models")  # one model: its panels read eval/<suite>/<task>/...
    report = tmp_path / "elsewhere"
    assert main(["report", str(run), "--wandb", "online", "--out", str(report), "--set", "report.figure_dpi=50"]) == 0
    out, err = capsys.readouterr()
    spec = json.loads((report / SPEC_FILE).read_text())
    assert "no API key found, logging offline" in err
    lines = [line for line in out.splitlines() if line.startswith("W&B Report:")]
    assert lines == [f"W&B Report: specification in {report / SPEC_FILE}; to publish it: `wandb sync "
                     f"{spec['run']['folder']}`, then `mbert report {run} --out {report} --publish`."]
    assert Path(spec["run"]["folder"]).name.startswith("offline-run-")
    assert_spec_names_every_result(spec, run / "eval" / "default")
    assert_panels_point_at_logged_keys(spec)
    averages = [p["metrics"] for p in spec_panels(spec) if p["type"] == "BarPlot"]
    assert averages == [[f"eval/default/{task}/target_average" for task in ("xnli", "pawsx", "tatoeba")]]


def test_publish_needs_a_spec_a_key_and_no_build_options(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    run = make_run(tmp_path, data_dir, stages=("evaluate",))
    assert main(["report", str(run), "--publish"]) == 1
    assert f"no W&B Report specification at {run / 'report' / SPEC_FILE}" in capsys.readouterr().err
    assert main(["report", str(run), "--wandb", "off"]) == 0
    assert not (run / "report" / SPEC_FILE).exists()  # no W&B run, nothing to point at
    write(run / "report" / SPEC_FILE, json.dumps({"format": SPEC_FORMAT, "run_dir": str(run)}))
    capsys.readouterr()
    assert main(["report", str(run), "--publish"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no W&B API key: run `wandb login`" in err
    assert main(["report", str(run), "--publish", "--title", "x"]) == 2
    assert "--title only act when building" in capsys.readouterr().err


def test_publish_updates_the_report_of_the_group_once_its_run_is_on_wandb(offline_run, monkeypatch):
    """The online path with W&B's service replaced: the run must exist, and a Report of the same
    title in the project is updated rather than duplicated."""
    import wandb
    import wandb_workspaces.reports.v2 as wr
    from wandb.apis.public.runs import RunNotFoundError

    run, _, _, _ = offline_run
    spec = json.loads((run / "report" / SPEC_FILE).read_text())
    synced: set[str] = set()
    saved: list[tuple[str, str, int]] = []

    class FakeApi:
        default_entity = "team"

        def run(self, path):
            if path not in synced:
                raise RunNotFoundError(path)

        def reports(self, path):
            return [SimpleNamespace(display_name="other", id="V0"),
                    SimpleNamespace(display_name=spec["title"], id="V1")]

    def save(report, draft=False, clone=False):
        saved.append((report.id, report.entity, len(report.blocks)))

    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setattr(wr.Report, "save", save)
    monkeypatch.setattr(wr.Report, "url", property(lambda report: f"https://w/{report.entity}/{report.id}"))
    path = run / "report" / SPEC_FILE
    with pytest.raises(UserError, match=f"not on W&B: upload it with `wandb sync {spec['run']['folder']}`"):
        publish(spec, path)
    synced.add(f"team/mbert/{spec['run']['id']}")
    assert publish(spec, path) == "https://w/team/V1"
    assert saved == [("V1", "team", len(spec["blocks"]))]
