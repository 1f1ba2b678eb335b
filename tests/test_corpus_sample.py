"""corpus sample: exponentially smoothed mixture from a clean corpus built from the kit's text."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mbert.cli import main
from mbert.corpus.extract import add_fake_languages, extract_corpus
from mbert.corpus.sample import choose_copies, count_tokens, is_complete, sample_mixture, smoothed_weights
from mbert.corpus.settings import CorpusSettings, DeclaredLanguage, SampleSettings
from mbert.errors import UserError

LANGS = ["en", "is", "el", "ja", "zh", "kk"]  # skewed: en 720 KB ... kk 5 KB


@pytest.fixture(scope="module")
def clean(data_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    sources = {lang: [str(data_dir / "corpus" / f"{lang}.txt")] for lang in LANGS}
    extract_corpus(CorpusSettings(sources=sources, workers=1), out)
    return out


def _rows(folder: Path) -> list[dict]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return pq.read_table([folder / p for p in manifest["parts"]]).to_pylist()


def test_smoothing_formula():
    p, q = smoothed_weights({"en": 1000.0, "is": 1.0}, 0.7)
    assert p["en"] == pytest.approx(1000 / 1001)
    assert q["en"] / q["is"] == pytest.approx(1000 ** 0.7)  # "1000x more English" -> ~126x
    assert sum(q.values()) == pytest.approx(1.0)
    p1, q1 = smoothed_weights({"a": 3.0, "b": 1.0}, 1.0)
    assert q1 == pytest.approx(p1)


def test_choose_copies_hits_target_and_caps_repeats():
    sizes = np.arange(1, 201, dtype=np.int64)
    copies, capped = choose_copies(sizes, 5000.0, 10.0, np.random.default_rng(0))
    assert abs(float((copies * sizes).sum()) - 5000.0) <= sizes.max() and not capped and copies.max() == 1
    copies, capped = choose_copies(sizes, sizes.sum() * 2.5, 10.0, np.random.default_rng(0))
    assert copies.min() == 2 and copies.max() == 3
    copies, capped = choose_copies(sizes, sizes.sum() * 50.0, 10.0, np.random.default_rng(0))
    assert capped and (copies == 10).all()


def test_mixture_follows_smoothed_weights(clean, tmp_path):
    out = tmp_path / "mix"
    settings = SampleSettings(smoothing=0.7, max_repeats=2.0, seed=3)
    logged: list[tuple] = []

    class Tracker:
        def table(self, key, columns, rows):
            logged.append((key, list(columns), len(rows)))

        def image(self, key, path):
            logged.append((key, Path(path).is_file()))

        def summary(self, metrics):
            logged.append(("summary", sorted(metrics)))

    manifest = sample_mixture(clean, out, settings, tracker=Tracker())
    assert ("sample/smoothing", True) in logged and ("sample/languages", logged[0][1], len(LANGS)) in logged
    assert is_complete(out) and manifest["smoothing"] == 0.7 and manifest["unit"] == "characters"
    langs = manifest["languages"]
    clean_manifest = json.loads((clean / "manifest.json").read_text())
    sizes = {l: clean_manifest["languages"][l]["characters"] for l in LANGS}
    p, q = smoothed_weights({l: float(s) for l, s in sizes.items()}, 0.7)
    total = sum(sizes.values())
    for lang in LANGS:
        row = langs[lang]
        assert row["p"] == pytest.approx(p[lang]) and row["q"] == pytest.approx(q[lang])
        assert row["target"] == pytest.approx(q[lang] * total, rel=1e-6)
        for key in ("achieved", "ratio", "repeats", "capped"):
            assert key in row
    # en is down-sampled, kk (smallest) is up-sampled and hits the repeat cap
    assert langs["en"]["achieved"] < sizes["en"] and langs["en"]["ratio"] < 1
    assert langs["kk"]["ratio"] > 2 and langs["kk"]["capped"] and langs["kk"]["repeats"] == 2
    assert langs["kk"]["achieved"] == pytest.approx(2 * sizes["kk"])
    for lang in ("en", "is", "el"):  # uncapped languages land within one document of the target
        docs = pq.read_table(clean / lang).column("text").to_pylist()
        largest = max(len(d) - d.count("\n") for d in docs)
        assert abs(langs[lang]["achieved"] - langs[lang]["target"]) <= largest
    rows = _rows(out)
    assert set(rows[0]) == {"lang", "id", "title", "text"}
    counted = {l: sum(len(r["text"]) - r["text"].count("\n") for r in rows if r["lang"] == l) for l in LANGS}
    assert counted == {l: int(langs[l]["achieved"]) for l in LANGS}
    head = [r["lang"] for r in rows[:40]]
    assert len(set(head)) >= 3, "rows are not shuffled across languages"
    assert (out / "smoothing.png").stat().st_size > 1000 and (out / "resolved_config.toml").is_file()


def test_sampling_is_deterministic_per_seed(clean, tmp_path):
    settings = SampleSettings(target_size=300_000, seed=7)
    sample_mixture(clean, tmp_path / "a", settings)
    first = _rows(tmp_path / "a")
    sample_mixture(clean, tmp_path / "b", settings)
    assert _rows(tmp_path / "b") == first
    sample_mixture(clean, tmp_path / "c", SampleSettings(target_size=300_000, seed=8))
    assert _rows(tmp_path / "c") != first


def test_token_unit_and_cli(clean, tmp_path, capsys):
    assert count_tokens("Hello, world!") == 4 and count_tokens("日本語です。") == 5
    out = tmp_path / "mix"
    code = main(["corpus", "sample", "--clean", str(clean), "--out", str(out), "--unit", "tokens",
                 "--smoothing", "0.5", "--target-size", "50000", "--seed", "1", "--wandb", "off"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["unit"] == "tokens" and manifest["smoothing"] == 0.5 and manifest["target_size"] == 50000
    assert sum(r["target"] for r in manifest["languages"].values()) == pytest.approx(50000)
    assert "corpus sample:" in capsys.readouterr().out


def test_sample_refuses_incomplete_clean_corpus(tmp_path, capsys):
    with pytest.raises(UserError, match="not a complete `corpus extract` output"):
        sample_mixture(tmp_path, tmp_path / "mix", SampleSettings())
    assert main(["corpus", "sample", "--clean", str(tmp_path), "--out", str(tmp_path / "m"),
                 "--smoothing", "1.5"]) == 2
    assert "smoothing" in capsys.readouterr().err
    assert not (tmp_path / "mix").exists()


def test_language_subset_is_mixed_alone_and_unknown_ones_are_named(clean, tmp_path, capsys):
    out = tmp_path / "mix"
    assert main(["corpus", "sample", "--clean", str(clean), "--out", str(out), "--languages", "el", "ja",
                 "--wandb", "off"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["languages"]) == {"el", "ja"}
    assert {row["lang"] for row in _rows(out)} == {"el", "ja"}
    assert sum(entry["q"] for entry in manifest["languages"].values()) == pytest.approx(1.0)
    with pytest.raises(UserError, match="no language fr"):
        sample_mixture(clean, tmp_path / "other", SampleSettings(languages=["el", "fr"]))
    assert not (tmp_path / "other").exists()


@pytest.fixture(scope="module")
def clean_with_fake(data_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean-fake")
    sources = {lang: [str(data_dir / "corpus" / f"{lang}.txt")] for lang in ("en", "is")}
    extract_corpus(CorpusSettings(sources=sources, fake=["en-fake"], workers=1), out)
    return out


def _documents(rows: list[dict], lang: str) -> dict[str, int]:
    chosen: dict[str, int] = {}
    for row in rows:
        if row["lang"] == lang:
            chosen[row["id"]] = chosen.get(row["id"], 0) + 1
    return chosen


@pytest.mark.parametrize("target", [300_000, 3_000_000])  # down-sampled, and repeated 2-3 times
def test_fake_language_takes_its_base_documents(clean_with_fake, tmp_path, target):
    """A lab mixture is parallel text: en-fake holds the fake copies of exactly the English documents
    (each as often), whatever the target; `fake_parallel = false` samples it on its own."""
    out = tmp_path / "par"
    manifest = sample_mixture(clean_with_fake, out, SampleSettings(smoothing=1.0, target_size=target, seed=5))
    rows = _rows(out)
    english = _documents(rows, "en")
    assert english == _documents(rows, "en-fake")
    assert 0 < len(english) < manifest["languages"]["en"]["documents_in"] or max(english.values()) > 1
    assert manifest["languages"]["en-fake"]["parallel_to"] == "en"
    assert manifest["languages"]["en"]["parallel_to"] is None

    alone = tmp_path / "alone"
    manifest = sample_mixture(clean_with_fake, alone, SampleSettings(smoothing=1.0, target_size=target, seed=5,
                                                                    fake_parallel=False))
    rows = _rows(alone)
    assert _documents(rows, "en") != _documents(rows, "en-fake")
    assert manifest["languages"]["en-fake"]["parallel_to"] is None


def _plain_text(path: Path, documents: list[list[str]]) -> str:
    path.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def boundless(tmp_path_factory) -> Path:
    """en: 20 short documents; is: 400 sentences and no blank line, i.e. one document, ~3x en."""
    folder = tmp_path_factory.mktemp("boundless")
    en = [[f"Document {d} says sentence number {s} here." for s in range(5)] for d in range(20)]
    is_ = [[f"Setning {s} er hér á íslensku." for s in range(400)]]
    sources = {"en": [_plain_text(folder / "en.txt", en)], "is": [_plain_text(folder / "is.txt", is_)]}
    extract_corpus(CorpusSettings(sources=sources, workers=1), folder / "clean")
    return folder / "clean"


def test_language_without_document_boundaries_is_sampled_in_sentence_blocks(boundless, tmp_path, capsys):
    settings = SampleSettings(smoothing=0.5, pseudo_document_sentences=7)
    manifest = sample_mixture(boundless, tmp_path / "mix", settings)
    row = manifest["languages"]["is"]
    assert row["documents_in"] == 1 and row["ratio"] < 0.9  # one document, to be down-sampled
    assert row["sampled_as"] == "blocks of 7 sentences"
    assert abs(row["off_target"]) < 0.02  # within one block (~1/50 of the language)
    assert manifest["languages"]["en"]["sampled_as"] == "documents"
    source = pq.read_table(boundless / "is").column("text").to_pylist()[0].split("\n")
    blocks = [r for r in _rows(tmp_path / "mix") if r["lang"] == "is"]
    assert len(blocks) == row["documents_out"] and 1 < len(blocks) < 400 // 7
    for block in blocks:  # consecutive sentences of the document, starting at a block boundary
        number = int(block["id"].rsplit("#", 1)[1])
        assert block["text"].split("\n") == source[7 * number:7 * number + 7]
    assert "warning" not in capsys.readouterr().err


def test_fake_language_mirrors_its_bases_sentence_blocks(boundless, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(boundless, clean)
    add_fake_languages(clean, ["is-fake"], "same")
    settings = SampleSettings(smoothing=0.5, pseudo_document_sentences=7)
    manifest = sample_mixture(clean, tmp_path / "mix", settings)
    fake = manifest["languages"]["is-fake"]
    assert fake["parallel_to"] == "is" and fake["sampled_as"] == "blocks of 7 sentences"
    rows = _rows(tmp_path / "mix")
    ids = {lang: sorted(r["id"] for r in rows if r["lang"] == lang) for lang in ("is", "is-fake")}
    assert ids["is"] == ids["is-fake"] and len(ids["is"]) > 1


def test_language_off_target_is_warned_about(boundless, tmp_path, capsys):
    # blocks as large as the document leave nothing to choose: is stays one whole document, too much
    settings = SampleSettings(smoothing=0.5, pseudo_document_sentences=400)
    manifest = sample_mixture(boundless, tmp_path / "mix", settings)
    assert manifest["languages"]["is"]["off_target"] > 0.1
    err = capsys.readouterr().err
    assert re.search(r"warning: corpus sample: is ends \d+% above its target .*--pseudo-document-sentences", err)
    assert "corpus sample: en ends" not in err
    # en is up-sampled (~1.4x); one repeat at most leaves it short
    manifest = sample_mixture(boundless, tmp_path / "capped", SampleSettings(smoothing=0.5, max_repeats=1.0))
    assert manifest["languages"]["en"]["capped"]
    assert re.search(r"warning: corpus sample: en ends \d+% below its target .*--max-repeats",
                     capsys.readouterr().err)


def test_kit_languages_without_documents_reach_their_targets(data_dir, tmp_path):
    """The kit's 48-language corpus at S = 0.5: with whole documents only, 23 languages missed their
    target by more than 10 % (is: 282k characters kept for a 201k target)."""
    extra = {code: DeclaredLanguage(name=code, script=script)
             for code, script in {"fo": "Latn", "mt": "Latn", "ug": "Arab", "wo": "Latn"}.items()}
    sources = {p.stem: [str(p)] for p in sorted((data_dir / "corpus").glob("*.txt"))}
    assert len(sources) == 48
    extract_corpus(CorpusSettings(sources=sources, workers=1, languages=extra), tmp_path / "clean")
    manifest = sample_mixture(tmp_path / "clean", tmp_path / "mix", SampleSettings(smoothing=0.5))
    langs = manifest["languages"]
    assert {l for l, r in langs.items() if abs(r["off_target"]) > 0.1} == set()
    assert langs["is"]["documents_in"] == 1 and langs["is"]["sampled_as"] == "blocks of 32 sentences"
    assert abs(langs["is"]["achieved"] - langs["is"]["target"]) < 0.02 * langs["is"]["target"]
    assert sum(r["sampled_as"] != "documents" for r in langs.values()) >= 20


def test_one_bucket_at_a_time_is_held_while_shuffling(clean, tmp_path, monkeypatch):
    """The mixture is shuffled bucket by bucket; a bucket's rows must be freed before the next one
    is read, or two buckets sit in memory at once (peak RSS 1.2 instead of 0.8 GB at x4 of the
    scaling runs). Each row read back is tracked by a weak reference."""
    import gc
    import weakref

    from mbert.corpus import sample as sample_module

    class Row(dict):  # a dict that can be weakly referenced
        pass

    buckets: list[list[weakref.ref]] = []
    alive_when_next_read: list[int] = []
    real_iter_rows = sample_module.iter_rows

    def tracking_iter_rows(path, columns):
        if not Path(path).name.startswith("bucket-"):  # a clean shard read while rows are dealt out
            yield from real_iter_rows(path, columns)
            return
        gc.collect()
        if buckets:
            alive_when_next_read.append(sum(ref() is not None for ref in buckets[-1]))
        refs: list[weakref.ref] = []
        buckets.append(refs)
        for row in real_iter_rows(path, columns):
            row = Row(row)
            refs.append(weakref.ref(row))
            yield row

    monkeypatch.setattr(sample_module, "iter_rows", tracking_iter_rows)
    reference = sample_mixture(clean, tmp_path / "plain", SampleSettings(target_size=300_000, shard_mb=0.05))
    assert len(buckets) >= 3 and all(buckets)
    assert alive_when_next_read == [0] * (len(buckets) - 1)
    monkeypatch.setattr(sample_module, "iter_rows", real_iter_rows)  # the tracking changed nothing written
    again = sample_mixture(clean, tmp_path / "again", SampleSettings(target_size=300_000, shard_mb=0.05))
    assert reference["parts"] == again["parts"] and _rows(tmp_path / "plain") == _rows(tmp_path / "again")
