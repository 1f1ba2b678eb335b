"""W&B: `mbert report RUN --wandb offline` logs the run; the offline `.wandb` file is read back with
`mbert.report.wandb_reader` (LevelDB-style log of `wandb_internal_pb2.Record`s) to check that the
per-language tables, charts and summary metrics are really in it. One offline run is shared."""

from __future__ import annotations

import pytest
from test_report import LANGS, make_run

from mbert.cli import main
from mbert.errors import UserError
from mbert.report.build import build_report
from mbert.report.settings import ReportSettings
from mbert.report.tracking import Tracker
from mbert.report.wandb_reader import (find_run_file, history_rows, load_table, logged_tables, read_records,
                                       summary_values, wait_until_finished)


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
        tracker.eval_metrics({"xnli": {"en": {"mean": 1.0, "std": 0.0, "seeds": [1.0]}}})
        tracker.bar_chart("x", ["en"], [1.0])
        tracker.heatmap("h", ["xnli"], ["en"], [[1.0]])
    assert list(tmp_path.iterdir()) == []


def test_reader_rejects_a_file_that_is_not_a_wandb_log(tmp_path):
    bogus = tmp_path / "run-x.wandb"
    bogus.write_bytes(b"not a wandb file at all")
    with pytest.raises(UserError, match="not a W&B run file"):
        summary_values(bogus)
    with pytest.raises(UserError, match="no W&B run file"):
        find_run_file(tmp_path / "nothing")
