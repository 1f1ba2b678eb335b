"""Offline report: collect a run folder, render report.html / report.md, check it in headless Chromium.

The run folder fixture is written in the pipeline contract formats (README, "pipeline"); its corpus
manifest counts the real corpus files of the data kit, the other numbers are small made-up values
with known averages and gaps."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from mbert.cli import main
from mbert.errors import UserError
from mbert.report import build as report_build
from mbert.report.build import build_report, is_complete
from mbert.report.collect import collect_run
from mbert.report.plots import curve_groups
from mbert.transfer.summary import summarize
from mbert.report.settings import ReportSettings

LANGS = ["en", "de", "fr", "is", "ja"]
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's package
CHROMIUM_INSTALL = "apt-get install -y chromium"

# zero-shot scores (0-100): xnli en 80 / targets avg 65 -> gap 15; tatoeba has no English result
METRICS = {
    "xnli": {"en": {"mean": 80.0, "std": 1.0, "seeds": [79.0, 80.0, 81.0]},
             "de": {"mean": 70.0, "std": 2.0, "seeds": [68.0, 70.0, 72.0]},
             "fr": {"mean": 60.0, "std": 0.5, "seeds": [59.5, 60.0, 60.5]}},
    "pawsx": {"en": {"mean": 90.0, "std": 0.0, "seeds": [90.0]},
              "de": {"mean": 81.0, "std": 0.0, "seeds": [81.0]}},
    "tatoeba": {"de": {"mean": 40.0, "std": 0.0, "seeds": [40.0]},
                "ja": {"mean": 20.0, "std": 0.0, "seeds": [20.0]}},
}

# language_neutrality.json as mbert/transfer/neutrality.py writes it; best centred layer = 1 (40.0)
NEUTRALITY = {
    "layers": [0, 1, 2], "metric": "Tatoeba accuracy (%), mean of xx->en and en->xx; layer 0 = embeddings",
    "accuracy": {"raw": [10.0, 20.0, 30.0], "centered": [15.0, 40.0, 35.0]},
    "per_language": {"de": {"sentences": 50, "raw": [12.0, 22.0, 32.0], "centered": [16.0, 44.0, 37.0]},
                     "ja": {"sentences": 50, "raw": [8.0, 18.0, 28.0], "centered": [14.0, 36.0, 33.0]}},
    "centroids_2d": {"en": [0.5, 0.1], "de": [0.4, -0.2], "ja": [-0.9, 0.1]}, "centroid_layer": 2,
    "pca_explained_variance": [0.7, 0.2], "max_sentences": 50,
}


def tiny_png(color: str = "tab:blue") -> bytes:
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot(1, 1, 1).plot([0, 1, 2], [1, 0, 2], color=color)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def count_corpus(path: Path) -> dict:
    """documents/sentences/characters/bytes of a kit corpus file (blank line between documents)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    sentences = [line for line in lines if line.strip()]
    documents = sum(1 for block in text.split("\n\n") if block.strip())
    return {"documents": documents, "sentences": len(sentences), "characters": sum(map(len, sentences)),
            "bytes": len(text.encode()), "source": str(path.name)}


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text, encoding="utf-8")


def make_run(root: Path, data_dir: Path, *, stages: tuple[str, ...] = ("corpus", "sample", "vocab", "pretrain",
                                                                        "evaluate")) -> Path:
    run = root / "run-fixture"
    run.mkdir(parents=True, exist_ok=True)
    write(run / "recipe.resolved.toml", '[run]\nout = "runs/fixture"\nwandb = "off"\n')
    png = tiny_png()
    if "corpus" in stages:
        languages = {lang: count_corpus(data_dir / "corpus" / f"{lang}.txt") for lang in LANGS}
        write(run / "corpus/clean/manifest.json", json.dumps({"languages": languages, "complete": True}))
        write(run / "corpus/clean/resolved_config.toml", "[corpus]\nmin_sentence_chars = 2\n")
    if "sample" in stages:
        chars = {lang: count_corpus(data_dir / "corpus" / f"{lang}.txt")["characters"] for lang in LANGS}
        total = sum(chars.values())
        p = {lang: c / total for lang, c in chars.items()}
        z = sum(v ** 0.7 for v in p.values())
        q = {lang: v ** 0.7 / z for lang, v in p.items()}
        mixture = {lang: {"p": p[lang], "q": q[lang], "target": round(q[lang] * total),
                          "achieved": round(q[lang] * total) + 3, "ratio": q[lang] / p[lang]} for lang in LANGS}
        write(run / "corpus/mixture/manifest.json", json.dumps(
            {"smoothing": 0.7, "unit": "characters", "languages": mixture, "complete": True}))
        write(run / "corpus/mixture/smoothing.png", png)
    if "vocab" in stages:
        write(run / "vocab/manifest.json", json.dumps({"kind": "wordpiece", "vocab_size": 1000, "complete": True}))
        report = {lang: {"fertility": 1.2 + i / 10, "split_share": 0.1 * i, "unk_rate": 0.001 * i,
                         "char_coverage": 0.99} for i, lang in enumerate(LANGS)}
        write(run / "vocab/report/report.json", json.dumps({"languages": report}))
        write(run / "vocab/report/report.png", tiny_png("tab:green"))
    if "pretrain" in stages:
        lines = []
        for step in range(1, 21):
            row = {"step": step, "loss": 9.0 - step * 0.2, "mlm_accuracy": 0.01 * step, "lr": 1e-4 * step / 20,
                   "grad_norm": 1.5, "tokens_per_s": 5000.0}
            if step % 5 == 0:
                row["heldout_loss"] = {"en": 8.0 - step * 0.1, "de": 8.5 - step * 0.1}
            lines.append(json.dumps(row))
        write(run / "pretrain/train_log.jsonl", "\n".join(lines) + "\n")
        write(run / "pretrain/manifest.json", json.dumps({"steps": 20, "model": "tiny", "complete": True}))
        write(run / "pretrain/resolved_config.toml", "[pretrain]\nsteps = 20\n")
    if "evaluate" in stages:
        suite = run / "eval" / "default"
        write(suite / "metrics.json", json.dumps(METRICS))
        for name, shift in (("mlm", 0.0), ("tlm", 5.0)):
            shifted = {task: {lang: {**v, "mean": v["mean"] + shift} for lang, v in langs.items()}
                       for task, langs in METRICS.items()}
            write(suite / "models" / name / "metrics.json", json.dumps(shifted))
        write(suite / "summary.md", "# Zero-shot summary\n\n| task | avg |\n|---|---|\n| xnli | 65.0 |\n")
        for name in ("mlm", "tlm"):  # several models: evaluate writes analysis/<model>/
            write(suite / "analysis" / name / "centroids.png", tiny_png("tab:red"))
            write(suite / "analysis" / name / "retrieval_by_layer.png", tiny_png("tab:purple"))
            write(suite / "analysis" / name / "language_neutrality.json", json.dumps(NEUTRALITY))
        write(suite / "manifest.json", json.dumps({"source_language": "en", "complete": True}))
        write(suite / "resolved_config.toml", "[evaluate]\nsuite = \"eval/default.toml\"\n")
    return run


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data_dir) -> Path:
    return make_run(tmp_path_factory.mktemp("report"), data_dir)


@pytest.fixture(scope="module")
def built_report(full_run) -> Path:
    return build_report(full_run, settings=ReportSettings(title="fixture run", figure_dpi=60))


# ----------------------------------------------------------------------------- collect / numbers

def test_collect_reads_every_stage_of_the_contract(full_run, data_dir):
    results = collect_run(full_run)
    assert [s.stage for s in results.stages] == ["corpus", "sample", "vocab", "pretrain", "evaluate default"]
    assert all(s.complete for s in results.stages)
    real_en = count_corpus(data_dir / "corpus" / "en.txt")
    assert results.corpus["languages"]["en"]["sentences"] == real_en["sentences"] > 1000
    assert results.mixture["smoothing"] == 0.7 and results.smoothing_png is not None
    assert results.vocab_report["languages"]["ja"]["fertility"] == pytest.approx(1.6)
    log = results.pretrain[0]
    assert len(log.records) == 20 and log.records[4]["heldout_loss/de"] == pytest.approx(8.0)
    suite = results.evals[0]
    assert suite.source_language == "en" and set(suite.models) == {"mlm", "tlm"}
    assert suite.metrics["xnli"]["de"].seeds == [68.0, 70.0, 72.0] and suite.metrics["xnli"]["de"].n_seeds == 3
    assert [(a.model, [p.name for p in a.images]) for a in suite.analyses] == [
        (name, ["centroids.png", "retrieval_by_layer.png"]) for name in ("mlm", "tlm")]
    assert suite.analyses[0].neutrality["accuracy"]["centered"] == [15.0, 40.0, 35.0]
    assert set(results.configs) == {"recipe", "corpus", "pretrain", "evaluate default"}


def test_average_over_targets_and_transfer_gap(full_run):
    by_task = {s.task: s for s in summarize(collect_run(full_run).evals[0].metrics, "en")}
    assert by_task["xnli"].target_average == pytest.approx(65.0) and by_task["xnli"].gap == pytest.approx(15.0)
    assert by_task["xnli"].languages == ["en", "de", "fr"]
    assert by_task["pawsx"].gap == pytest.approx(9.0)
    assert by_task["tatoeba"].source is None and by_task["tatoeba"].gap is None
    assert by_task["tatoeba"].target_average == pytest.approx(30.0)


def test_train_log_keys_are_grouped_into_panels():
    groups = curve_groups(["step", "loss", "heldout_loss/en", "heldout_loss/de", "lr"])
    assert groups == {"loss": ["loss"], "heldout_loss": ["heldout_loss/en", "heldout_loss/de"], "lr": ["lr"]}


def test_output_still_being_written_is_read_safely(tmp_path, data_dir):
    run = make_run(tmp_path, data_dir, stages=("pretrain",))
    with (run / "pretrain/train_log.jsonl").open("a") as handle:
        handle.write('{"step": 21, "loss": 4.')
    (run / "pretrain/manifest.json").unlink()
    write(run / "eval" / ".default.x1y2.partial" / "metrics.json", json.dumps(METRICS))  # evaluate still running
    results = collect_run(run)
    assert len(results.pretrain[0].records) == 20 and results.stages[0].complete is False
    assert [s.stage for s in results.stages] == ["pretrain"]


# ----------------------------------------------------------------------------- the report files

def test_report_html_is_self_contained_and_complete(built_report, full_run):
    page = built_report.read_text(encoding="utf-8")
    out = built_report.parent
    assert built_report == full_run / "report" / "report.html" and is_complete(out)
    # nothing outside the file: every src/href is a data URI or an in-page anchor
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert references and all(r.startswith(("data:image/png;base64,", "#")) for r in references)
    assert "url(" not in page and "@import" not in page and "default-src 'none'" in page
    for title in ("Run configuration", "Corpus", "Tokenizer", "Pretraining", "Zero-shot evaluation",
                  "Model comparison", "Language neutrality"):
        assert f"<h2>{title}</h2>" in page
    manifest = json.loads((out / "manifest.json").read_text())
    assert page.count("<img ") == manifest["figures"] >= 10
    assert "transfer gap (en − average)</td><td></td><td class=\"num\">15.0" in page  # xnli gap
    assert "– (no en result)" in page  # tatoeba: retrieval has no source-language score, so no gap
    assert "70.0 ± 2.0" in page and "68.0, 70.0, 72.0" in page  # seed mean ± std and per-seed scores
    for lang in LANGS:
        assert f"<td>{lang}</td>" in page
    assert "# Zero-shot summary" in page and "min_sentence_chars = 2" in page
    # language neutrality: accuracy by layer with the centred gain, per language, centroid coordinates
    assert '<td class="num">1</td><td class="num">20.00</td><td class="num">40.00</td><td class="num">20.00</td>' in page
    assert "<h3>Tlm</h3>" in page and "best centred layer" in page and "explained variance 0.70, 0.20" in page


def test_report_markdown_references_saved_figures(built_report):
    out = built_report.parent
    markdown = (out / "report.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(images) == json.loads((out / "manifest.json").read_text())["figures"]
    for image in images:
        assert not Path(image).is_absolute() and (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| xnli | en | 80.00 | 65.00 | 15.00 | 2 |" in markdown
    assert "## Language neutrality" in markdown and (out / "resolved_config.toml").is_file()


def images_loaded_in_chromium(page: Path, profile: Path) -> tuple[int, int]:
    """(decoded, total) images of `page` as headless Chromium reports them through the report's
    own load check (`#image-check`)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"headless Chromium is needed to check the HTML report and {CHROMIUM} is missing: "
                    f"install Debian's package as root with `{CHROMIUM_INSTALL}`")
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()]
    # no timeout: Chromium exits once the page is loaded and dumped (the virtual time budget bounds
    # the page's own timers); a loaded machine makes that slower, not wrong
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    check = re.search(r'id="image-check"[^>]*data-loaded="(\d+)" data-total="(\d+)"', result.stdout)
    assert check, "the report's load check did not run in Chromium:\n" + result.stdout[-1000:]
    return int(check.group(1)), int(check.group(2))


def test_report_renders_in_headless_chromium_with_every_image_loaded(built_report, tmp_path):
    expected = json.loads((built_report.parent / "manifest.json").read_text())["figures"]
    assert images_loaded_in_chromium(built_report, tmp_path / "profile") == (expected, expected)
    # the check does see a broken image: corrupt one data URI in a copy
    page = built_report.read_text(encoding="utf-8")
    start = page.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(page[:start] + "AAAA" + page[page.index('"', start):], encoding="utf-8")
    assert images_loaded_in_chromium(broken, tmp_path / "profile") == (expected - 1, expected)


def test_partial_run_reports_only_present_stages(tmp_path, data_dir):
    run = make_run(tmp_path, data_dir, stages=("corpus", "sample"))
    (run / "corpus/mixture/smoothing.png").unlink()  # the report then draws p_L vs q_L itself
    page = build_report(run, settings=ReportSettings(figure_dpi=50)).read_text(encoding="utf-8")
    assert "<h2>Corpus</h2>" in page and page.count("<img ") == 1
    assert "Pretraining" not in page and "Zero-shot evaluation" not in page and "Tokenizer" not in page


def test_user_errors_are_one_line_and_leave_nothing(tmp_path, data_dir, capsys):
    with pytest.raises(UserError, match="does not exist"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no stage output"):
        build_report(tmp_path / "empty")
    assert not (tmp_path / "empty" / "report").exists()
    run = make_run(tmp_path, data_dir, stages=("corpus",))
    write(tmp_path / "busy" / ".notes", "mine")
    with pytest.raises(UserError, match="holds other files"):
        build_report(run, tmp_path / "busy")
    assert (tmp_path / "busy" / ".notes").read_text() == "mine"
    assert main(["report", str(tmp_path / "missing"), "--wandb", "off"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbert: error: run folder") and "\n" not in err


def test_failed_build_keeps_the_previous_report(tmp_path, data_dir, monkeypatch):
    run = make_run(tmp_path, data_dir, stages=("corpus",))
    first = build_report(run, settings=ReportSettings(figure_dpi=50))
    before = first.read_text(encoding="utf-8")

    def broken(_document):
        raise RuntimeError("disk full")
    monkeypatch.setattr(report_build, "render_markdown", broken)
    with pytest.raises(RuntimeError):
        build_report(run, settings=ReportSettings(title="second", figure_dpi=50))
    assert first.read_text(encoding="utf-8") == before and is_complete(first.parent)
    assert [p.name for p in run.iterdir() if p.name.startswith(".report")] == []


def test_cli_writes_the_report_to_out(tmp_path, data_dir, capsys):
    run = make_run(tmp_path, data_dir, stages=("corpus", "evaluate"))
    out = tmp_path / "elsewhere"
    assert main(["report", str(run), "--out", str(out), "--wandb", "off", "--title", "CLI report",
                 "--set", "report.figure_dpi=50"]) == 0
    assert is_complete(out) and "<title>CLI report</title>" in (out / "report.html").read_text(encoding="utf-8")
    assert "Report written" in capsys.readouterr().out
    assert not (run / "wandb").exists()


# ----------------------------------------------------------------------------- text from a recipe is inert

HOSTILE_TITLE = 'run <img src=x onerror="alert(1)"> & <b>'


def _csp_sources(page: str) -> dict[str, list[str]]:
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def test_report_policy_allows_only_its_own_script_and_style_and_no_navigation(tmp_path, data_dir):
    import base64
    import hashlib

    run = make_run(tmp_path, data_dir, stages=("corpus",))
    page = build_report(run, settings=ReportSettings(title=HOSTILE_TITLE, figure_dpi=50)).read_text(encoding="utf-8")
    policy = _csp_sources(page)
    assert policy["form-action"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["default-src"] == ["'none'"] and "'unsafe-inline'" not in sum(policy.values(), [])

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert policy["script-src"] == [digest(s) for s in scripts] and len(scripts) == 1
    assert policy["style-src"] == [digest(s) for s in styles] and len(styles) == 1
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;b&gt;" in page


def test_injected_inline_script_does_not_run_in_chromium(built_report, tmp_path):
    page = built_report.read_text(encoding="utf-8")
    copy = tmp_path / "injected.html"
    copy.write_text(page.replace("</main>", "</main><script>document.title='injected ran'</script>"),
                    encoding="utf-8")
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    assert 'id="image-check"' in dom  # the report's own (hashed) script ran
    assert "injected ran" not in dom.replace("document.title='injected ran'", "")


def test_markdown_escapes_html_from_the_recipe_like_the_html(tmp_path, data_dir):
    run = make_run(tmp_path, data_dir, stages=("corpus",))
    build_report(run, settings=ReportSettings(title=HOSTILE_TITLE, figure_dpi=50))
    first_line = (run / "report" / "report.md").read_text(encoding="utf-8").split("\n", 1)[0]
    assert first_line == "# run &lt;img src=x onerror=\"alert(1)\"&gt; &amp; &lt;b&gt;"
