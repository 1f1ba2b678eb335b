"""The multilinguality lab's pieces beyond the fake mapping itself: TLM between a text and its
fake copy, and the lab recipes validating as shipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mbert.config import build
from mbert.fake import fake_text
from mbert.pretrain import instances as I
from mbert.pretrain.settings import PretrainSettings, TlmPair
from mbert.pretrain.sources import tlm_source
from mbert.recipe import load_recipe
from mbert.transfer.suite import load_suite


def _vocab(sentences: list[str], out: Path) -> Path:
    from transformers import BertTokenizerFast

    from mbert.vocab.wordpiece import train_wordpiece

    wordpiece = train_wordpiece([sentences], size=1500, uncased=False, min_frequency=1,
                                show_progress=False)
    BertTokenizerFast(vocab=wordpiece.get_vocab(with_added_tokens=False), do_lower_case=False,
                      tokenize_chinese_chars=True, strip_accents=False).save_pretrained(str(out))
    return out


def test_tlm_pairs_each_sentence_with_its_fake_copy(data_dir, tmp_path):
    """A TLM pair whose target language is a fake code reads the base language's file and maps it:
    the second segment of every instance is exactly the fake copy of the first."""
    from transformers import AutoTokenizer

    lines = [line for line in (data_dir / "corpus" / "en.txt").read_text(encoding="utf-8").split("\n")
             if line.strip() and not line.startswith("#")][:300]
    text = tmp_path / "en.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(_vocab(lines + [fake_text(x, "en-fake") for x in lines],
                                                     tmp_path / "vocab"))
    pair = build(TlmPair, {"src": str(text), "tgt": str(text), "src_lang": "en", "tgt_lang": "en-fake"})
    settings = PretrainSettings(model="tiny", max_seq_length=512, tlm=[pair], tlm_ratio=0.5)
    languages = ["en"]
    source = tlm_source(settings, tokenizer, languages)
    assert languages == ["en", "en-fake"]
    assert len(source.instances) == len(lines)
    for row, line in zip(source.instances[:50], lines):
        a = source.tokens[row[I.A_START]:row[I.A_START] + row[I.A_LEN]].tolist()
        b = source.tokens[row[I.B_START]:row[I.B_START] + row[I.B_LEN]].tolist()
        assert a == tokenizer(line, add_special_tokens=False)["input_ids"]
        assert b == tokenizer(fake_text(line, "en-fake"), add_special_tokens=False)["input_ids"]
        assert not set(a) & set(b) - {tokenizer.unk_token_id}  # no shared sub-word
        assert (row[I.LANG_A], row[I.LANG_B]) == (0, 1)


@pytest.mark.parametrize("name, variants", [
    ("lab-fake.toml", {"mlm", "mlm-tlm"}), ("lab-fake-long.toml", {"mlm", "mlm-tlm"}),
    ("lab-fake-12x.toml", {"mlm"}),
    ("lab-real.toml", {"mlm", "mlm-tlm"}), ("lab-real-long.toml", {"mlm", "mlm-tlm"}),
    ("lab-real-6x.toml", {"mlm-tlm"}), ("lab-real-12x.toml", {"mlm-tlm"}),
    ("lab-real-24x.toml", {"mlm-tlm"}), ("lab-real-wide.toml", {"mlm-tlm"})])
def test_lab_recipes_validate(repo_dir, data_dir, monkeypatch, name, variants):
    """The shipped lab recipes load and validate against the data kit (a typo fails here, not an hour in)."""
    monkeypatch.setenv("MBERT_DATA", str(data_dir))
    recipe = load_recipe(repo_dir / "corpora" / name)
    assert set(recipe.pretrain_variants()) == variants
    assert recipe.evaluate.random_init
    suite = load_suite(recipe.evaluate.suite)  # validates every task of the lab's suite
    assert suite.random_init and len(suite.seeds) >= 3


def _scores(seeds: list[float], by_layer: dict | None = None) -> dict:
    import statistics

    entry = {"mean": statistics.mean(seeds), "std": statistics.stdev(seeds) if len(seeds) > 1 else 0.0, "seeds": seeds}
    return entry | ({"by_layer": by_layer} if by_layer else {})


def test_report_opens_with_the_pretrained_against_random_headline(tmp_path):
    """The report's first section after the overview compares every model per task: source score and
    the target average with its spread over seeds (per-seed averages), a figure per task, retrieval by
    layer per model."""
    from mbert.report.build import build_report

    suite = tmp_path / "run" / "eval" / "lab"
    models = {
        "mlm": {"udpos": {"en": _scores([90.0, 92.0]), "en-fake": _scores([10.0, 20.0]), "de": _scores([30.0, 40.0])},
                "retrieval": {"en-fake": _scores([50.0], {"raw": {"0": 5.0, "1": 50.0}, "centered": {"0": 9.0, "1": 70.0}})}},
        "random-init": {"udpos": {"en": _scores([80.0, 81.0]), "en-fake": _scores([5.0, 6.0]), "de": _scores([7.0, 8.0])},
                        "retrieval": {"en-fake": _scores([1.0], {"raw": {"0": 1.0, "1": 1.0}})}}}
    for name, metrics in models.items():
        (suite / "models" / name).mkdir(parents=True)
        (suite / "models" / name / "metrics.json").write_text(json.dumps(metrics))
    (suite / "manifest.json").write_text(json.dumps({"complete": True, "source": "en"}))
    build_report(tmp_path / "run")
    markdown = (tmp_path / "run" / "report" / "report.md").read_text()
    sections = [line for line in markdown.split("\n") if line.startswith("## ")]
    assert sections[:2] == ["## Overview", "## Headline: pretrained models against random initialisation"]
    headline = markdown.split("## Headline")[1].split("\n## ")[0]
    # mlm target average per seed: (10+30)/2 = 20, (20+40)/2 = 30 -> 25.0 ± 7.1
    assert "| udpos | 91.0 ± 1.4 | 25.0 ± 7.1 | 80.5 ± 0.7 | 6.5 ± 0.7 |" in headline
    assert "| retrieval | – | 50.0 | – | 1.0 |" in headline
    figures = tmp_path / "run" / "report" / "figures"
    assert (figures / "headline_lab_udpos.png").is_file() and (figures / "headline_lab_retrieval_layers.png").is_file()
    assert not (figures / "headline_lab_udpos_layers.png").exists()  # no by-layer scores there


def test_retrieval_curve_splits_text_by_what_the_mixture_holds(repo_dir, tmp_path):
    """bench/lab_retrieval_curve.py --mixture: "seen" sentences are exactly the English lines of the
    mixture (never its fake half's, never another language's), "held-out" ones never are; both are a
    seeded sample within the length bounds, each sentence once."""
    import importlib.util

    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = importlib.util.spec_from_file_location("curve", repo_dir / "bench" / "lab_retrieval_curve.py")
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)

    seen = [f"Sentence number {i} that the model was trained on." for i in range(40)]
    unseen = [f"Sentence number {i} that the model never saw in training." for i in range(40)]
    only_fake = "A sentence whose fake copy alone is in the mixture."
    other_lang = "A line that only the Spanish half of the mixture holds."
    mixture = tmp_path / "mixture"
    mixture.mkdir()
    rows = [{"lang": "en", "id": "1", "title": "a", "text": "\n".join(seen[:20])},
            {"lang": "en", "id": "2", "title": "b", "text": "Short.\n" + "\n".join(seen[20:])},
            {"lang": "en-fake", "id": "1", "title": "a", "text": fake_text(only_fake, "en-fake") + "\n" + only_fake},
            {"lang": "es", "id": "3", "title": "c", "text": other_lang}]
    pq.write_table(pa.Table.from_pylist(rows), mixture / "part-00000.parquet")

    trained = curve.mixture_sentences(mixture, "en")
    assert set(seen) | {"Short."} == trained
    text = seen + unseen + [only_fake, other_lang, "Short.", "x" * 301] + seen[:5]  # repeats count once
    got_seen = curve.split_sentences(text, trained, "seen", 100, seed=0)
    got_held = curve.split_sentences(text, trained, "held-out", 100, seed=0)
    assert sorted(got_seen) == sorted(seen)                       # "Short." and repeats left out
    assert sorted(got_held) == sorted(unseen + [only_fake, other_lang])  # the 301-character line too
    sample = curve.split_sentences(text, trained, "held-out", 10, seed=0)
    assert len(sample) == 10 and sample == curve.split_sentences(text, trained, "held-out", 10, seed=0)
    assert sample != curve.split_sentences(text, trained, "held-out", 10, seed=1)
    assert sample != sorted(sample)  # a random sample, not the first lines in order


def test_word_alignment_finds_every_word_when_the_fake_copy_is_the_word_itself(repo_dir, tiny_model, data_dir,
                                                                               tmp_path, monkeypatch):
    """bench/lab_word_alignment.py: with a "fake" mapping that leaves words as they are, each fake
    word's vector is its original's, so the nearest English word is the original at every layer
    (100 %); with the real mapping the same model finds few (fresh weights: no alignment)."""
    import importlib.util

    import mbert.fake

    spec = importlib.util.spec_from_file_location("words", repo_dir / "bench" / "lab_word_alignment.py")
    words = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(words)
    args = [str(tiny_model), "--text", str(data_dir / "ud" / "en_lines-ud-train.conllu"), "--sentences", "40",
            "--words", "30"]

    assert words.main(args + ["--json", str(tmp_path / "real.json")]) == 0
    real = json.loads((tmp_path / "real.json").read_text())
    assert real["words"] == 30 and len(real["by_layer"]) == 3  # embeddings + 2 layers
    assert all(0 <= v < 50 for v in real["by_layer"].values())

    monkeypatch.setattr(mbert.fake, "fake_text", lambda text, code: text)
    assert words.main(args + ["--json", str(tmp_path / "same.json")]) == 0
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["by_layer"] == same["raw_by_layer"] == {"0": 100.0, "1": 100.0, "2": 100.0}


def test_tag_confusion_counts_each_gold_tag_and_its_commonest_prediction(repo_dir, tmp_path):
    """bench/tag_confusion.py: per gold tag, its words, the share tagged right and the tag most often
    given instead; gold and predictions of different test sets are refused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("confusion", repo_dir / "bench" / "tag_confusion.py")
    confusion = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(confusion)
    labels = tmp_path / "labels" / "udpos"
    predictions = tmp_path / "models" / "mlm" / "predictions" / "udpos"
    labels.mkdir(parents=True)
    predictions.mkdir(parents=True)
    (labels / "test-xx.tsv").write_text("a\tDET\nb\tNOUN\n\nc\tDET\nd\tADP\ne\tDET\n", encoding="utf-8")
    (predictions / "test-xx.tsv").write_text("a\tADP\nb\tNOUN\n\nc\tADP\nd\tDET\ne\tDET\n", encoding="utf-8")
    gold = confusion.read_tags(labels / "test-xx.tsv")
    assert gold == ["DET", "NOUN", "DET", "ADP", "DET"]
    table = confusion.confusion(gold, confusion.read_tags(predictions / "test-xx.tsv"))
    assert table == {"DET": {"count": 3, "accuracy": 33.3, "commonest": "ADP"},
                     "NOUN": {"count": 1, "accuracy": 100.0, "commonest": "NOUN"},
                     "ADP": {"count": 1, "accuracy": 0.0, "commonest": "DET"}}
    assert confusion.main([str(tmp_path), "--task", "udpos", "--lang", "xx", "--model", "mlm"]) == 0
    (predictions / "test-xx.tsv").write_text("a\tADP\n", encoding="utf-8")
    assert confusion.main([str(tmp_path), "--task", "udpos", "--lang", "xx", "--model", "mlm"]) == 1
