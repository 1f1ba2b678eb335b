"""`mbert run`: the embedded demo recipe end to end, then resume and redo behaviour."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from test_report_wandb import assert_panels_point_at_logged_keys, assert_spec_names_every_result

from mbert.pipeline import STAGES, default_recipe
from mbert.report.wandb_publish import SPEC_FILE

# The demo recipe, shrunk so the whole pipeline runs in about a minute on 2 cores.
FAST = ["pretrain.steps=8", "pretrain.eval_every=4", "pretrain.checkpoint_every=4", "pretrain.batch_size=8",
        "evaluate.seeds=[1]", "evaluate.max_train_examples=32", "evaluate.max_eval_examples=16",
        "vocab.size=1500"]


def _run(run_dir: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    """`mbert run` as the README's first command gives it: no recipe (the embedded demo), run from the
    folder that gets `runs/demo/`; only the FAST overrides and the test's extras are added."""
    sets = [arg for item in FAST for arg in ("--set", item)]
    at_default = run_dir.parts[-2:] == ("runs", "demo")
    out = [] if at_default else ["--out", str(run_dir)]
    result = subprocess.run([sys.executable, "-m", "mbert", "--quiet", "run", *out, *sets, *extra],
                            capture_output=True, text=True,  # no timeout: a loaded machine is slower, not wrong
                            cwd=run_dir.parents[1] if at_default else run_dir.parent)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    run_dir = tmp_path_factory.mktemp("demo") / "runs" / "demo"
    return run_dir, _run(run_dir)


def test_no_recipe_means_the_embedded_demo(repo_dir: Path) -> None:
    assert default_recipe() == repo_dir / "corpora" / "demo.toml"


def test_demo_produces_every_stage_and_the_report(demo_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    run_dir, result = demo_run
    clean = json.loads((run_dir / "corpus/clean/manifest.json").read_text())
    assert len(clean["languages"]) >= 8 and {"zh", "ja", "ru", "ar"} <= set(clean["languages"])
    mixture = json.loads((run_dir / "corpus/mixture/manifest.json").read_text())
    assert mixture["smoothing"] == 0.7
    assert (run_dir / "vocab/tokenizer.json").is_file() and (run_dir / "vocab/report/report.json").is_file()
    for variant in ("mlm", "mlm-tlm"):  # pretrained side by side, as the recipe asks
        assert (run_dir / f"pretrain/{variant}/model/config.json").is_file()
        assert not (run_dir / f"pretrain/{variant}/data/store").exists()
    assert (run_dir / "pretrain/token_store/store.json").is_file()  # tokenized once for both
    metrics = json.loads((run_dir / "eval/demo/metrics.json").read_text())
    assert {"ner", "pos", "tatoeba"} <= set(metrics)
    assert set(metrics["ner"]) >= {"en", "de", "zh", "ar"}
    html = (run_dir / "report/report.html").read_text(encoding="utf-8")
    assert "<img" in html and "src=\"http" not in html  # self-contained
    # every stage logged to the same W&B project (offline), grouped by the run folder
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) >= len(STAGES)
    resolved = tomllib.loads((run_dir / "recipe.resolved.toml").read_text())
    assert resolved["pretrain"]["steps"] == 8
    assert str(run_dir / "report/report.html") in result.stdout


def test_demo_report_stage_writes_the_wandb_report_of_its_run(
        demo_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    """Before the reruns below (W&B off) replace the report folder."""
    run_dir, result = demo_run
    spec = json.loads((run_dir / "report" / SPEC_FILE).read_text())
    assert spec["run"]["group"] == run_dir.name and spec["run"]["name"] == f"{run_dir.name}-report"
    assert_spec_names_every_result(spec, run_dir / "eval" / "demo")  # mlm, mlm-tlm, random-init
    assert_panels_point_at_logged_keys(spec)
    overview = next(b["text"] for b in spec["blocks"] if b["type"] == "MarkdownBlock")
    assert "**Pretrained models**: mlm (tiny BERT, 8 steps); mlm-tlm (tiny BERT, 8 steps)." in overview
    assert f"then `mbert report {run_dir} --publish`" in result.stdout


def test_rerun_skips_complete_stages_and_redoes_what_changed(
        demo_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    run_dir, _ = demo_run
    model = run_dir / "pretrain/mlm/model/model.safetensors"
    before = model.stat().st_mtime_ns
    # runtime-only settings (logging, workers, devices, W&B) never invalidate a stage
    runtime = ["corpus.workers=1", "corpus.chunk_mb=1", 'run.wandb_project="elsewhere"', "pretrain.log_every=3",
               "pretrain.checkpoint_every=2", 'pretrain.device="cpu"', "pretrain.tokenize_workers=1",
               "evaluate.threads=1", 'evaluate.device="cpu"', "report.wandb_artifacts=true"]
    again = _run(run_dir, "--wandb", "off", *[arg for item in runtime for arg in ("--set", item)])
    for stage in STAGES:
        assert f"{stage} skipped" in again.stdout, again.stdout
    assert model.stat().st_mtime_ns == before
    report = run_dir / "report/report.html"
    report_before = report.stat().st_mtime_ns
    changed = _run(run_dir, "--wandb", "off", "--set", 'report.title="changed title"')
    assert "evaluate skipped" in changed.stdout and "report skipped" not in changed.stdout
    assert model.stat().st_mtime_ns == before  # upstream untouched
    assert report.stat().st_mtime_ns != report_before and "changed title" in report.read_text(encoding="utf-8")
    state = json.loads((run_dir / "run_state.json").read_text())
    assert set(state) == set(STAGES)
    # a reference checkpoint (here: a copy of a variant) joins the comparison; pretraining is kept
    reference = run_dir.parent / "reference"
    shutil.copytree(run_dir / "pretrain/mlm/model", reference)
    compared = _run(run_dir, "--wandb", "off", "--set", f'evaluate.compare={{reference = "{reference}"}}')
    assert "pretrain skipped" in compared.stdout and "evaluate skipped" not in compared.stdout
    comparison = json.loads((run_dir / "eval/demo/comparison.json").read_text())
    assert list(comparison) == ["mlm", "mlm-tlm", "reference", "random-init"]
    assert comparison["reference"] == comparison["mlm"]  # same weights, same seed


def test_a_pretraining_made_outside_the_run_is_used_and_never_replaced_silently(
        demo_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    """The torchrun path: `--until vocab`, pretrain into RUN/pretrain, then `mbert run` again."""
    run_dir, _ = demo_run
    state_path = run_dir / "run_state.json"
    state = json.loads(state_path.read_text())
    for stage in ("pretrain", "evaluate", "report"):  # as after `mbert run --until vocab`
        state.pop(stage)
    state_path.write_text(json.dumps(state))
    model = run_dir / "pretrain/mlm/model/model.safetensors"
    before = model.stat().st_mtime_ns
    other = _run(run_dir, "--wandb", "off", "--until", "pretrain", "--set", "pretrain.steps=9", check=False)
    assert other.returncode == 1 and "holds a finished pretraining" in other.stderr
    assert "steps = 8 there, 9 here" in other.stderr and "--from pretrain" in other.stderr
    assert model.stat().st_mtime_ns == before and "pretrain" not in json.loads(state_path.read_text())
    same = _run(run_dir, "--wandb", "off", "--until", "pretrain", "--set", "pretrain.device=cpu")
    assert "pretrain" in json.loads(state_path.read_text())  # adopted: a runtime setting differs only
    assert model.stat().st_mtime_ns == before and "pretrain skipped" not in same.stdout
    assert "using the finished run" in same.stdout


def test_an_upstream_change_never_replaces_a_pretraining_implicitly(
        demo_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    run_dir, _ = demo_run
    state_before = (run_dir / "run_state.json").read_text()
    vocab = run_dir / "vocab/tokenizer.json"
    before = vocab.stat().st_mtime_ns
    changed = _run(run_dir, "--wandb", "off", "--set", "vocab.size=1400", check=False)
    assert changed.returncode == 1 and changed.stderr.count("\n") == 1, changed.stderr
    assert "vocab.size = 1500 there, 1400 here" in changed.stderr and "--from vocab" in changed.stderr
    assert vocab.stat().st_mtime_ns == before and (run_dir / "run_state.json").read_text() == state_before
    assert tomllib.loads((run_dir / "recipe.resolved.toml").read_text())["vocab"]["size"] == 1500


def test_an_output_change_redoes_exactly_its_stage_and_those_after_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _run(run_dir, "--wandb", "off", "--until", "vocab")
    clean = (run_dir / "corpus/clean/manifest.json").stat().st_mtime_ns
    vocab = json.loads((run_dir / "vocab/manifest.json").read_text())
    redone = _run(run_dir, "--wandb", "off", "--until", "vocab", "--set", "sample.seed=5")
    assert "(corpus skipped, sample " in redone.stdout and "vocab skipped" not in redone.stdout
    assert (run_dir / "corpus/clean/manifest.json").stat().st_mtime_ns == clean
    assert json.loads((run_dir / "corpus/mixture/manifest.json").read_text())["seed"] == 5
    assert json.loads((run_dir / "vocab/manifest.json").read_text())["corpus_fingerprint"] != vocab["corpus_fingerprint"]


def test_from_stage_redoes_that_stage_and_every_later_one_only(
        demo_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    run_dir, _ = demo_run
    _run(run_dir, "--wandb", "off")  # whatever earlier tests left: every stage up to date
    model = run_dir / "pretrain/mlm/model/model.safetensors"
    outputs = {path: path.stat().st_mtime_ns for path in
               (model, run_dir / "vocab/tokenizer.json", run_dir / "eval/demo/metrics.json",
                run_dir / "report/report.html")}
    again = _run(run_dir, "--wandb", "off", "--from", "evaluate")
    for stage in ("corpus", "sample", "vocab", "pretrain"):
        assert f"{stage} skipped" in again.stdout, again.stdout
    assert "evaluate skipped" not in again.stdout and "report skipped" not in again.stdout
    changed = {path for path, stamp in outputs.items() if path.stat().st_mtime_ns != stamp}
    assert changed == {run_dir / "eval/demo/metrics.json", run_dir / "report/report.html"}
