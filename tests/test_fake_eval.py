"""Fake languages in evaluation suites: test data mapped exactly as the corpus copy is, and
retrieval between held-out sentences and their fake copies, scored at every layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mbert.config import build
from mbert.corpus.fake_copy import fake_document
from mbert.errors import ConfigError
from mbert.fake import fake_text
from mbert.transfer.evaluate import evaluate
from mbert.transfer.readers import read_conllu
from mbert.transfer.settings import EvaluateSettings
from mbert.transfer.suite import Suite, TaskSpec
from mbert.transfer.tasks import load_task, required_files

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PUD = "ud/pud/en_pud-ud-test.conllu"


def _suite(tmp_path: Path, data_dir: Path, body: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(f'data = "{data_dir}"\nseeds = [1]\n' + body, encoding="utf-8")
    return path


def test_token_and_pair_tasks_test_on_the_fake_copy_of_the_source_file(data_dir):
    suite = build(Suite, {"data": str(data_dir), "tasks": {
        "udpos": {"kind": "pos", "train": "udpos_xtreme/dev-en.tsv", "test": "ud/pud/{lang}_pud-ud-test.conllu",
                  "languages": ["en", "en-fake"], "max_eval_examples": 100},
        "xnli": {"kind": "pair", "test": "xnli/dev-{lang}.tsv", "split_by_index": True,
                 "languages": ["en", "en-fake"]}}})
    files = required_files(suite, suite.tasks["udpos"])
    assert data_dir / PUD in files and not [f for f in files if "fake" in str(f)]
    udpos = load_task(suite, "udpos", suite.tasks["udpos"], max_train=10)
    real, copy = udpos.test["en"], udpos.test["en-fake"]
    assert len(copy) == len(real) == 100
    for sentence, fake_sentence in zip(real, copy):
        assert fake_sentence.tags == sentence.tags
        # word by word, the same text as the corpus copy of the sentence
        assert " ".join(fake_sentence.words) == fake_document(" ".join(sentence.words), "en-fake", "doc")
        assert not set("".join(fake_sentence.words)) & set("".join(sentence.words))
    xnli = load_task(suite, "xnli", suite.tasks["xnli"])
    assert [p.label for p in xnli.test["en-fake"]] == [p.label for p in xnli.test["en"]]
    assert [p.first for p in xnli.test["en-fake"]] == [fake_text(p.first, "en-fake") for p in xnli.test["en"]]


def test_suite_settings_for_fake_retrieval_are_checked():
    with pytest.raises(ConfigError, match="must be fake codes .* not de"):
        build(TaskSpec, {"kind": "tatoeba", "text": PUD, "languages": ["en-fake", "de"]})
    with pytest.raises(ConfigError, match="not both"):
        build(TaskSpec, {"kind": "tatoeba", "text": PUD, "folder": "tatoeba", "languages": ["en-fake"]})
    with pytest.raises(ConfigError, match="tatoeba tasks only"):
        build(TaskSpec, {"kind": "pos", "layers": "all", "test": "x-{lang}", "train": "x", "languages": ["en"]})
    assert build(TaskSpec, {"kind": "tatoeba", "text": PUD, "languages": ["en-fake"], "layers": [0, 2]}).layers \
        == [0, 2]


def _fake_aware_model(folder: Path, data_dir: Path, tie: bool) -> Path:
    """A random 2-layer BERT whose vocabulary was trained on English and Fake English; with `tie`,
    every fake entry gets its English counterpart's embedding, so a sentence and its copy are encoded
    identically: retrieval must then be exact at every layer."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    from mbert.vocab.wordpiece import train_wordpiece, vocab_lines

    lines = [line for line in (data_dir / "corpus" / "en.txt").read_text(encoding="utf-8").split("\n")
             if line.strip()][:1000]
    lines += [" ".join(sentence.words) for sentence in read_conllu(data_dir / PUD)[:80]]
    wordpiece = train_wordpiece([lines, [fake_text(line, "en-fake") for line in lines]], size=2000,
                                uncased=False, min_frequency=2, show_progress=False)
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("".join(e + "\n" for e in vocab_lines(wordpiece)), encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=False)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    if tie:
        vocab = tokenizer.get_vocab()
        weights = model.bert.embeddings.word_embeddings.weight
        with torch.no_grad():
            for entry, index in vocab.items():
                twin = "##" + fake_text(entry[2:], "en-fake") if entry.startswith("##") else fake_text(entry, "en-fake")
                if twin != entry and twin in vocab:
                    weights[vocab[twin]] = weights[index]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_retrieval_against_fake_copies_at_every_layer(tmp_path, data_dir):
    tied = _fake_aware_model(tmp_path / "tied", data_dir, tie=True)
    suite = _suite(tmp_path, data_dir, f"""
[tasks.fake_retrieval]
kind = "tatoeba"
text = "{PUD}"
languages = ["en-fake"]
layers = "all"
metric = "mean"
max_eval_examples = 80
""")
    out = tmp_path / "eval"
    evaluate({"tied": tied}, suite, out, EvaluateSettings(suite=suite, random_init=True, device="cpu"))
    results = json.loads((out / "comparison.json").read_text())
    entry = results["tied"]["fake_retrieval"]["en-fake"]
    assert set(entry["by_layer"]) == {"raw", "centered"} and set(entry["by_layer"]["raw"]) == {"0", "1", "2"}
    assert min(entry["by_layer"]["raw"].values()) >= 95.0  # identical encodings: exact gold is found
    assert entry["mean"] == entry["by_layer"]["raw"]["2"]  # the headline: the configured (last) layer
    random = results["random-init"]["fake_retrieval"]["en-fake"]
    best = random["best_layer"]["raw"]
    assert best["score"] == max(random["by_layer"]["raw"].values())
    assert random["by_layer"]["raw"][str(best["layer"])] == best["score"]
    assert random["mean"] < 50.0  # unrelated random embeddings: far from exact
    indices = (out / "predictions" / "fake_retrieval" / "test-en-fake.tsv").read_text().split()
    assert len(indices) == 80
    summary = (out / "summary.md").read_text()
    assert "fake_retrieval by layer" in summary and "best layer" in summary


def test_a_retrieval_layer_beyond_the_model_stops_before_any_work(tmp_path, data_dir, tiny_bert):
    model_dir = tmp_path / "m"
    model, tokenizer = tiny_bert
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    suite = _suite(tmp_path, data_dir, f"""
[tasks.fake_retrieval]
kind = "tatoeba"
text = "{PUD}"
languages = ["en-fake"]
layers = [0, 5]
""")
    with pytest.raises(ConfigError, match=r"layers 0 \(embeddings\) to 2; .* fake_retrieval \(layer 5\)"):
        evaluate({"m": model_dir}, suite, tmp_path / "out", EvaluateSettings(suite=suite, device="cpu"))
    assert not (tmp_path / "out").exists()


def test_retrieval_sentences_seen_in_pretraining_are_refused(tmp_path, data_dir, tiny_bert):
    """A model whose recorded pretraining corpus holds a retrieval sentence is not scored on it."""
    from mbert.corpus.extract import extract_corpus
    from mbert.corpus.settings import CorpusSettings
    from mbert.errors import UserError

    sentence = next(line for line in (data_dir / PUD).read_text(encoding="utf-8").split("\n")
                    if line.startswith("# text = "))[len("# text = "):]
    text = tmp_path / "en.txt"
    text.write_text("An unrelated sentence.\n" + sentence + "\nAnother one.\n", encoding="utf-8")
    extract_corpus(CorpusSettings(sources={"en": [str(text)]}, workers=1), tmp_path / "clean")
    model, tokenizer = tiny_bert
    model.save_pretrained(tmp_path / "pre" / "model")
    tokenizer.save_pretrained(tmp_path / "pre" / "model")
    (tmp_path / "pre" / "manifest.json").write_text(json.dumps(
        {"stage": "pretrain", "complete": True, "corpus": str(tmp_path / "clean")}))
    suite = _suite(tmp_path, data_dir, f"""
[tasks.fake_retrieval]
kind = "tatoeba"
text = "{PUD}"
languages = ["en-fake"]
""")
    with pytest.raises(UserError, match=r"1 sentence\(s\) of retrieval task fake_retrieval occur verbatim"):
        evaluate({"m": tmp_path / "pre"}, suite, tmp_path / "out", EvaluateSettings(suite=suite, device="cpu"))
    assert not (tmp_path / "out").exists()
