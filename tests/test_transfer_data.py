"""Readers, suite validation and task loading of the transfer stage, on the real data kit."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from mbert.config import build
from mbert.errors import ConfigError, UserError
from mbert.transfer.readers import read_conllu, read_iob2, read_pairs, read_tagged, read_xtreme_tags
from mbert.transfer.suite import Suite, load_suite
from mbert.transfer.tasks import load_task, required_files

PANX_TAGS = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}


def _word_lines(path: Path) -> int:
    """Lines whose ID is a plain integer: the syntactic words UPOS is annotated on."""
    return sum(1 for line in path.read_text(encoding="utf-8").split("\n")
               if line and not line.startswith("#") and line.split("\t")[0].isdigit())


def test_conllu_skips_multiword_tokens(data_dir):
    path = data_dir / "ud/pud/de_pud-ud-test.conllu"
    text = path.read_text(encoding="utf-8")
    assert any(line.split("\t")[0].count("-") == 1 for line in text.split("\n") if line and line[0].isdigit())
    sentences = read_conllu(path)
    assert len(sentences) == 1000
    assert sum(len(s.words) for s in sentences) == _word_lines(path)
    assert sum(len(s.words) for s in sentences) == 21_332  # MANIFEST: syntactic words
    assert {t for s in sentences for t in s.tags} <= {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN",
                                                      "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM",
                                                      "VERB", "X"}


def test_conllu_empty_nodes_and_ranges(tmp_path, data_dir):
    # The first English PUD sentence, with a multiword range and an empty node added in front.
    first = data_dir / "ud/pud/en_pud-ud-test.conllu"
    block = first.read_text(encoding="utf-8").split("\n\n")[0].split("\n")
    words = [line for line in block if line and line.split("\t")[0].isdigit()]
    fake_range = "1-2\t" + "\t".join(["x"] + ["_"] * 8)
    empty = "1.1\t" + "\t".join(["ghost", "_", "NOUN"] + ["_"] * 6)
    path = tmp_path / "s.conllu"
    path.write_text("\n".join(["# sent_id = 1", fake_range, words[0], empty, *words[1:]]) + "\n\n")
    [sentence] = read_conllu(path)
    assert list(sentence.words) == [w.split("\t")[1] for w in words]
    assert "ghost" not in sentence.words and "x" not in sentence.words


def test_xtreme_layout_plain_and_xz(data_dir):
    train = read_xtreme_tags(data_dir / "panx/train-en.tsv.xz")
    assert len(train) == 20_000
    assert sum(len(s.words) for s in train) == 160_394
    assert {t for s in train for t in s.tags} == PANX_TAGS
    yo = read_tagged(data_dir / "panx/dev-yo.tsv")
    assert len(yo) == 100 and sum(len(s.words) for s in yo) == 489
    with pytest.raises(UserError, match="unlabelled"):
        read_xtreme_tags(data_dir / "panx/test-sw.tsv")


def test_iob2_and_pairs(data_dir):
    uner = read_iob2(data_dir / "uner/en_pud-ud-test.iob2")
    assert len(uner) == 1000 and sum(len(s.words) for s in uner) == 21_176
    assert {t for s in uner for t in s.tags} <= PANX_TAGS | {"B-OTH", "I-OTH"}
    for task, labels, n in [("xnli", {"entailment", "neutral", "contradiction"}, 2490), ("pawsx", {"0", "1"}, 2000)]:
        for path in sorted((data_dir / task).glob("dev-*.tsv")):
            pairs = read_pairs(path)
            # one pair per "\n"-terminated line, even where a sentence holds U+2028-like characters
            assert len(pairs) == n == path.read_text(encoding="utf-8").count("\n"), path
            assert {p.label for p in pairs} == labels


def test_default_suite_is_valid_and_its_files_exist(repo_dir, data_dir, monkeypatch):
    monkeypatch.setenv("MBERT_DATA", str(data_dir))
    suite = load_suite(repo_dir / "eval/default.toml")
    assert suite.source == "en" and len(suite.seeds) >= 2
    assert {"pos", "ner", "pair", "tatoeba", "bucc"} == {t.kind for t in suite.tasks.values()}
    assert {"udpos", "panx", "uner", "xnli", "pawsx"} <= set(suite.tasks)
    missing = [p for name, spec in suite.tasks.items() for p in required_files(suite, spec) if not p.is_file()]
    assert missing == []
    for spec in suite.tasks.values():
        if spec.folder:
            assert (suite.data / spec.folder).is_dir()


def test_suite_validation_errors(tmp_path, data_dir):
    base = {"data": str(data_dir), "tasks": {"x": {"kind": "pos", "train": "a", "test": "ud/{lang}",
                                                   "languages": ["en"]}}}
    build(Suite, base, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        build(Suite, {**base, "learning_rat": 1e-4}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="must contain \\{lang\\}"):
        build(Suite, {**base, "tasks": {"x": {**base["tasks"]["x"], "test": "ud/en.conllu"}}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        build(Suite, {**base, "data": str(tmp_path / "nowhere")}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="freeze_layers"):
        build(Suite, {**base, "freeze_layers": -1}, base_dir=tmp_path)


def _suite(data_dir, tmp_path, **task) -> Suite:
    return build(Suite, {"data": str(data_dir), "tasks": {"t": task}}, base_dir=tmp_path)


def test_split_by_index_keeps_translations_apart(data_dir, tmp_path):
    suite = _suite(data_dir, tmp_path, kind="pair", split_by_index=True, test="xnli/dev-{lang}.tsv",
                   languages=["en", "de"], train_fraction=0.6, dev_fraction=0.1)
    task = load_task(suite, "xnli", suite.tasks["t"], max_train=100, max_eval=50)
    english = read_pairs(data_dir / "xnli/dev-en.tsv")
    german = read_pairs(data_dir / "xnli/dev-de.tsv")
    n_train, n_dev = int(2490 * 0.6), int(2490 * 0.1)
    assert task.train == english[:100]
    assert task.dev == english[n_train:n_train + n_dev]
    assert task.test["de"] == german[n_train + n_dev:n_train + n_dev + 50]
    assert task.test["en"] == english[n_train + n_dev:n_train + n_dev + 50]
    train_premises = {p.first for p in english[:n_train + n_dev]}
    assert not {p.first for p in english[n_train + n_dev:]} & train_premises  # premises never straddle
    assert task.labels == ["contradiction", "entailment", "neutral"]


def test_held_out_dev_and_caps(data_dir, tmp_path):
    suite = _suite(data_dir, tmp_path, kind="ner", train="panx/train-en.tsv.xz", test="panx/dev-{lang}.tsv",
                   languages=["en", "yo"], dev_fraction=0.1, max_dev_examples=20)
    task = load_task(suite, "panx", suite.tasks["t"], max_train=30, max_eval=10)
    full = read_xtreme_tags(data_dir / "panx/train-en.tsv.xz")
    assert task.train == full[:30] and task.dev == full[18_000:18_020]
    assert len(task.test["yo"]) == 10 and task.labels == sorted(PANX_TAGS)


def test_missing_language_and_label_mismatch_are_reported(data_dir, tmp_path):
    suite = _suite(data_dir, tmp_path, kind="ner", train="panx/train-en.tsv.xz", test="panx/dev-{lang}.tsv",
                   languages=["en", "xx", "qq"])
    with pytest.raises(UserError, match=r"missing data file\(s\): .*dev-xx\.tsv, .*dev-qq\.tsv"):
        load_task(suite, "panx", suite.tasks["t"])
    # UD POS training data, tested against NER-tagged files: every foreign label is listed
    suite = _suite(data_dir, tmp_path, kind="pos", train="udpos_xtreme/dev-en.tsv", dev="udpos_xtreme/dev-en.tsv",
                   test="panx/dev-{lang}.tsv", languages=["yo"])
    with pytest.raises(UserError, match=r"yo: B-LOC, B-ORG, B-PER, I-LOC, I-ORG, I-PER, O"):
        load_task(suite, "mixed", suite.tasks["t"])


def test_xz_reader_matches_decompressed_text(data_dir):
    path = data_dir / "udpos_xtreme/train-en.tsv.xz"
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        blocks = [b for b in handle.read().split("\n\n") if b.strip()]
    assert len(read_xtreme_tags(path)) == len(blocks) == 21_253


def test_hub_loading_offline_is_a_clear_error(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    suite = _suite(data_dir, tmp_path, kind="ner", hub="panx", languages=["de"])
    with pytest.raises(UserError, match="cannot load xtreme/PAN-X.en .*use local files when offline"):
        load_task(suite, "panx", suite.tasks["t"])
