"""Fine-tuning, scoring against XTREME's published scoring logic, and the evaluation runner/CLI.

A tiny BERT (WordPiece vocab trained on kit corpus files, 2 layers, random weights) is built once
per session; every fine-tuning uses at most a few hundred examples and one epoch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers_transfer import TATOEBA, XNLI, task, write_suite
from helpers_transfer import tiny_mlm_checkpoint as _tiny_checkpoint

from mbert.cli import main
from mbert.config import build
from mbert.errors import ConfigError, UserError
from mbert.tracking import Tracker
from mbert.report.wandb_reader import find_run_file, load_table, logged_tables, summary_values, wait_until_finished
from mbert.transfer.checkpoints import Checkpoint, check_checkpoint
from mbert.transfer.evaluate import evaluate, is_complete
from mbert.transfer.finetune import IGNORE, encode_tagged, fine_tune, to_labels
from mbert.transfer.predictions import write_xtreme
from mbert.transfer.readers import TaggedSentence, read_conllu, read_pairs, read_xtreme_tags
from mbert.transfer.scoring import aggregate, entity_f1, label_accuracy, token_accuracy
from mbert.transfer.settings import EvaluateSettings
from mbert.transfer.suite import Suite
from mbert.transfer.tasks import load_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ----------------------------------------------------------------------------- fixtures
# `tiny_model` (conftest.py): a random 2-layer BERT checkpoint, shared by the session

def _write_suite(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def _mini_suite(tmp_path: Path, data_dir: Path, seeds: str = "[1, 2]") -> Path:
    return _write_suite(tmp_path / "mini.toml", f"""
data = "{data_dir}"
seeds = {seeds}
epochs = 1
learning_rate = 5e-4
batch_size = 16
max_length = 64

[tasks.udpos]
kind = "pos"
train = "udpos_xtreme/dev-en.tsv"
dev = "ud/en_lines-ud-train.conllu"
test = "ud/pud/{{lang}}_pud-ud-test.conllu"
languages = ["en", "de"]
max_train_examples = 300
max_dev_examples = 30
max_eval_examples = 30
epochs = 2
learning_rate = 3e-3

[tasks.panx]
kind = "ner"
train = "panx/train-en.tsv.xz"
test = "panx/dev-{{lang}}.tsv"
languages = ["en", "de", "yo"]
max_train_examples = 120
max_dev_examples = 30
max_eval_examples = 40

[tasks.xnli]
kind = "pair"
split_by_index = true
test = "xnli/dev-{{lang}}.tsv"
languages = ["en", "de"]
max_train_examples = 120
max_dev_examples = 30
max_eval_examples = 40
""")


# ----------------------------------------------------------------------------- XTREME's scoring, reimplemented
# From google-research/xtreme evaluate.py: read_tag / read_label, seqeval f1 and accuracy in percent.

def xtreme_read_tag(path: Path) -> list[list[str]]:
    labels, example = [], []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                example.append(line)
            else:
                labels.append(example)
                example = []
    if example:
        labels.append(example)
    return labels


def xtreme_read_label(path: Path) -> list[str]:
    with open(path) as handle:
        return [line.strip() for line in handle]


def xtreme_f1(labels, predictions) -> float:
    from seqeval.metrics import f1_score
    return f1_score(labels, predictions) * 100


def xtreme_accuracy(labels, predictions) -> float:
    return sum(int(p == l) for p, l in zip(predictions, labels)) / len(predictions) * 100


def test_scores_match_xtreme_on_known_answers(tmp_path):
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O"]]
    # entities: gold PER, LOC, ORG(2 words); predicted PER (right), ORG(1 word, wrong span)
    # precision 1/2, recall 1/3 -> F1 = 2 * (1/2 * 1/3) / (1/2 + 1/3) = 40%
    assert entity_f1(gold, predicted) == pytest.approx(40.0)
    for name, values in [("pred", predicted), ("gold", gold)]:
        write_xtreme(tmp_path / name, "panx", "xx", values, token_task=True)
    assert xtreme_f1(xtreme_read_tag(tmp_path / "gold/panx/test-xx.tsv"),
                     xtreme_read_tag(tmp_path / "pred/panx/test-xx.tsv")) == pytest.approx(40.0)
    assert token_accuracy(gold, predicted) == pytest.approx(100 * 5 / 7)
    labels, guesses = ["entailment", "neutral", "neutral", "contradiction"], ["entailment", "neutral", "x", "x"]
    write_xtreme(tmp_path / "pred", "xnli", "xx", guesses, token_task=False)
    write_xtreme(tmp_path / "gold", "xnli", "xx", labels, token_task=False)
    assert label_accuracy(labels, guesses) == 50.0 == xtreme_accuracy(
        xtreme_read_label(tmp_path / "gold/xnli/test-xx.tsv"), xtreme_read_label(tmp_path / "pred/xnli/test-xx.tsv"))
    assert aggregate([50.0, 60.0, 70.0]) == {"mean": 60.0, "std": 10.0, "seeds": [50.0, 60.0, 70.0]}
    assert aggregate([42.0]) == {"mean": 42.0, "std": 0.0, "seeds": [42.0]}


# ----------------------------------------------------------------------------- encoding / fine-tuning

def test_labels_on_first_subtoken_only(tiny_model, data_dir):
    tokenizer = check_checkpoint(Checkpoint("tiny", tiny_model))
    sentences = read_conllu(data_dir / "ud/pud/de_pud-ud-test.conllu")[:20]
    tags = sorted({t for s in sentences for t in s.tags})
    label2id = {t: i for i, t in enumerate(tags)}
    encoded = encode_tagged(tokenizer, sentences, label2id, max_length=512)
    split_words = 0
    for sentence, item in zip(sentences, encoded):
        pieces = [tokenizer(w, add_special_tokens=False)["input_ids"] or [tokenizer.unk_token_id]
                  for w in sentence.words]
        assert item.input_ids == [tokenizer.cls_token_id] + [i for p in pieces for i in p] + [tokenizer.sep_token_id]
        starts = [1 + sum(len(p) for p in pieces[:k]) for k in range(len(pieces))]
        assert item.first_positions == starts
        assert [item.labels[pos] for pos in starts] == [label2id[t] for t in sentence.tags]
        assert sum(label != IGNORE for label in item.labels) == len(sentence.words)
        split_words += sum(len(p) > 1 for p in pieces)
    assert split_words > 50  # the tiny vocabulary splits many German words: the case under test
    # truncation keeps whole words only; cut-off words are predicted as the fallback label
    short = encode_tagged(tokenizer, sentences[:1], label2id, max_length=8)[0]
    assert len(short.input_ids) <= 8 and 0 < len(short.first_positions) < len(sentences[0].words)


def _tune_english_pos(model: Path, data_dir: Path, tmp_path: Path, *, train_examples: int, **hyper):
    """One fine-tuning run (seed 3, one epoch) on the first English UD dev sentences."""
    suite = build(Suite, {"data": str(data_dir), "epochs": 1, "learning_rate": 1e-3, "batch_size": 16,
                          "max_length": 64, **hyper,
                          "tasks": {"pos": {"kind": "pos", "train": "udpos_xtreme/dev-en.tsv",
                                            "dev": "udpos_xtreme/dev-en.tsv",
                                            "test": "ud/pud/{lang}_pud-ud-test.conllu", "languages": ["en"],
                                            "max_train_examples": train_examples, "max_dev_examples": 16}}},
                  base_dir=tmp_path)
    task = load_task(suite, "pos", suite.tasks["pos"])
    return fine_tune(model, task, check_checkpoint(Checkpoint("tiny", model)), suite.hyper(suite.tasks["pos"]),
                     seed=3, device="cpu", fallback="NOUN")


def test_keep_layers_fine_tunes_the_lower_layers_only(tiny_model, data_dir, tmp_path):
    """`keep_layers = 1`: the fine-tuned model has layer 0 alone (the head reads it), its weights come
    from the checkpoint's layer 0; keeping every layer is the same run as leaving it unset."""
    from transformers import BertModel

    def tune(**hyper):
        return _tune_english_pos(tiny_model, data_dir, tmp_path, train_examples=32, **hyper)

    one = tune(keep_layers=1, freeze_embeddings=True, freeze_layers=1)  # nothing but the head moves
    names = one.model.state_dict()
    assert len(one.model.bert.encoder.layer) == 1 == one.model.config.num_hidden_layers
    assert not [n for n in names if n.startswith("bert.encoder.layer.1.")]
    before = BertModel.from_pretrained(tiny_model, add_pooling_layer=False).state_dict()
    assert all(torch.equal(before[n.removeprefix("bert.")], v) for n, v in names.items()
               if n.startswith("bert.encoder.layer.0."))
    full, unset = tune(keep_layers=2), tune()
    assert full.dev_scores == unset.dev_scores and len(full.model.bert.encoder.layer) == 2


def test_frozen_parameters_stay_bit_identical(tiny_model, data_dir, tmp_path):
    from transformers import BertModel

    tuned = _tune_english_pos(tiny_model, data_dir, tmp_path, train_examples=64, freeze_embeddings=True,
                              freeze_layers=1)
    before = BertModel.from_pretrained(tiny_model, add_pooling_layer=False).state_dict()
    after = {name.removeprefix("bert."): value for name, value in tuned.model.state_dict().items()}
    frozen = [n for n in before if n.startswith(("embeddings.", "encoder.layer.0."))]
    moving = [n for n in before if n.startswith("encoder.layer.1.")]
    assert frozen and moving and len(tuned.frozen) == len(frozen)
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert all(not torch.equal(before[n], after[n]) for n in moving if n.endswith("weight"))
    assert tuned.best_epoch == 1 and len(tuned.dev_scores) == 1


# ----------------------------------------------------------------------------- the runner

def test_evaluate_writes_xtreme_layout_and_metrics(tiny_model, data_dir, tmp_path):
    out = tmp_path / "eval"
    result = evaluate(tiny_model, _mini_suite(tmp_path, data_dir), out,
                      EvaluateSettings(suite=tmp_path / "mini.toml"))
    assert is_complete(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == result["metrics"]
    assert list(metrics) == ["udpos", "panx", "xnli"]
    assert list(metrics["panx"]) == ["en", "de", "yo"]
    # the tagger learnt English well beyond the majority tag (NOUN, ~18%): labels line up with words
    assert metrics["udpos"]["en"]["mean"] > 45.0
    for languages in metrics.values():
        for entry in languages.values():
            assert set(entry) == {"mean", "std", "seeds"} and len(entry["seeds"]) == 2
            assert all(0.0 <= s <= 100.0 for s in entry["seeds"])
            assert entry == aggregate(entry["seeds"])

    # XTREME's own scoring over our prediction files gives our numbers (first seed's predictions)
    for lang in ("en", "de", "yo"):
        gold = xtreme_read_tag(out / f"labels/panx/test-{lang}.tsv")
        assert gold == [list(s.tags) for s in read_xtreme_tags(data_dir / f"panx/dev-{lang}.tsv")[:40]]
        predicted = xtreme_read_tag(out / f"predictions/panx/test-{lang}.tsv")
        assert [len(s) for s in predicted] == [len(s) for s in gold]
        assert xtreme_f1(gold, predicted) == pytest.approx(metrics["panx"][lang]["seeds"][0], abs=1e-3)
    for lang in ("en", "de"):
        gold = xtreme_read_label(out / f"labels/xnli/test-{lang}.tsv")
        assert gold == [p.label for p in read_pairs(data_dir / f"xnli/dev-{lang}.tsv")[1494:1534]]
        predicted = xtreme_read_label(out / f"predictions/xnli/test-{lang}.tsv")
        assert xtreme_accuracy(gold, predicted) == pytest.approx(metrics["xnli"][lang]["seeds"][0], abs=1e-3)
        tags_gold = xtreme_read_tag(out / f"labels/udpos/test-{lang}.tsv")
        tags_predicted = xtreme_read_tag(out / f"predictions/udpos/test-{lang}.tsv")
        flat = [(g, p) for gs, ps in zip(tags_gold, tags_predicted) for g, p in zip(gs, ps)]
        assert 100 * sum(g == p for g, p in flat) / len(flat) == pytest.approx(
            metrics["udpos"][lang]["seeds"][0], abs=1e-3)

    summary = (out / "summary.md").read_text()
    for heading in ("## udpos", "## panx", "## xnli", "target average", "transfer gap", "en *(source)*", "| yo |"):
        assert heading in summary
    panx = next(task for task in result["summary"]["tiny"] if task.task == "panx")
    assert panx.gap == pytest.approx(metrics["panx"]["en"]["mean"]
                                       - (metrics["panx"]["de"]["mean"] + metrics["panx"]["yo"]["mean"]) / 2, abs=1e-3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["seeds"] == [1, 2]
    assert set(manifest["details"]["tiny"]["udpos"]) == {"1", "2"}
    assert (out / "resolved_config.toml").is_file()
    # no staging folder left behind; the finished fine-tuning runs are kept beside the output
    assert [p.name for p in tmp_path.glob(".eval.*")] == [".eval.units"]


def test_compare_models_with_random_init_and_retrieval(tiny_model, data_dir, tmp_path):
    pretrain_dir = tmp_path / "pretrain"  # a pretrain output folder: the checkpoint sits in model/
    shutil.copytree(tiny_model, pretrain_dir / "model")
    suite = write_suite(tmp_path / "cmp.toml", data_dir, seeds=[1], epochs=1, random_init=True, max_length=64,
                        tasks={"xnli": task(XNLI, ["en", "fr"], max_train_examples=48, max_dev_examples=16,
                                            max_eval_examples=16),
                               "tatoeba": task(TATOEBA, ["de", "fr"], max_eval_examples=100),
                               "bucc": task({"kind": "bucc", "folder": "bucc2018"}, ["zh"], max_eval_examples=200)})
    out = tmp_path / "out"
    result = evaluate({"mlm": tiny_model, "mlm+tlm": pretrain_dir}, suite, out, EvaluateSettings(suite=suite))
    assert list(result["models"]) == ["mlm", "mlm+tlm", "random-init"]
    comparison = json.loads((out / "comparison.json").read_text())
    assert json.loads((out / "metrics.json").read_text()) == comparison["mlm"]
    for name in comparison:
        assert json.loads((out / "models" / name / "metrics.json").read_text()) == comparison[name]
        assert (out / "models" / name / "predictions/xnli/test-fr.tsv").is_file()
        assert set(comparison[name]["tatoeba"]) == {"de", "fr"}
        assert set(comparison[name]["bucc"]) == {"zh"} and 0 <= comparison[name]["bucc"]["zh"]["mean"] <= 100
    # retrieval predictions and gold in XTREME's layout (tatoeba: retrieved index; bucc2018: id pairs)
    for lang in ("de", "fr"):
        gold = xtreme_read_label(out / f"labels/tatoeba/test-{lang}.tsv")
        predicted = xtreme_read_label(out / f"predictions/tatoeba/test-{lang}.tsv")
        assert gold == [str(i) for i in range(100)] and len(predicted) == 100
        assert xtreme_accuracy(gold, predicted) == pytest.approx(comparison["mlm"]["tatoeba"][lang]["mean"])
    bucc_gold = xtreme_read_label(out / "labels/bucc/test-zh.tsv")
    assert len(bucc_gold) > 100 and all(line.count("\t") == 1 for line in bucc_gold)
    assert (out / "predictions/bucc/test-zh.tsv").is_file()
    # same weights, same seed: identical results; fresh weights give other retrieval scores
    assert comparison["mlm"] == comparison["mlm+tlm"]
    assert comparison["random-init"]["tatoeba"] != comparison["mlm"]["tatoeba"]
    assert "| language | mlm | mlm+tlm | random-init |" in (out / "summary.md").read_text()


@pytest.mark.filterwarnings("ignore:.*seems not to be NE tag")  # XTREME's scorer, reimplemented below
def test_pos_can_report_xtremes_f1(tiny_model, data_dir, tmp_path):
    """`metric = "f1"` on a pos task scores it as XTREME's udpos (seqeval F1 over the tags)."""
    mini = _mini_suite(tmp_path, data_dir, seeds="[1]").read_text()
    suite = _write_suite(tmp_path / "f1.toml", mini.replace('kind = "pos"\n', 'kind = "pos"\nmetric = "f1"\n'))
    out = tmp_path / "out"
    metrics = evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite, tasks=["udpos"]))["metrics"]
    for lang in ("en", "de"):
        gold = xtreme_read_tag(out / f"labels/udpos/test-{lang}.tsv")
        predicted = xtreme_read_tag(out / f"predictions/udpos/test-{lang}.tsv")
        assert xtreme_f1(gold, predicted) == pytest.approx(metrics["udpos"][lang]["mean"], abs=1e-3)
        assert metrics["udpos"][lang]["mean"] != pytest.approx(token_accuracy(gold, predicted), abs=0.5)
    assert "## udpos (seqeval F1 over UPOS tags, as XTREME)" in (out / "summary.md").read_text()
    with pytest.raises(ConfigError, match="does not apply to a ner task"):
        build(Suite, {"tasks": {"x": {"kind": "ner", "metric": "f1", "test": "{lang}.tsv", "train": "t.tsv",
                                      "languages": ["de"]}}}, base_dir=tmp_path)


# ----------------------------------------------------------------------------- bad input, CLI

def test_cli_reports_bad_input_in_one_line(tiny_model, data_dir, tmp_path, capsys):
    suite = _mini_suite(tmp_path, data_dir)
    text = suite.read_text().replace('languages = ["en", "de", "yo"]', 'languages = ["en", "xx"]')
    bad_suite = _write_suite(tmp_path / "bad.toml", text)
    out = tmp_path / "out"
    code = main(["evaluate", "--model", str(tiny_model), "--suite", str(bad_suite), "--out", str(out),
                 "--wandb", "off", "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and "panx" in error and "dev-xx.tsv" in error and "Traceback" not in error
    assert not out.exists()

    # a tokenizer that belongs to another model
    other = _tiny_checkpoint(tmp_path / "other", [data_dir / "corpus/ja.txt"], 400)
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_model, mixed)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(other / name, mixed / name)
    code = main(["evaluate", "--model", f"bad={mixed}", "--suite", str(suite), "--out", str(out), "--wandb", "off"])
    error = capsys.readouterr().err
    sizes = [json.loads((mixed / "config.json").read_text())["vocab_size"],
             len((other / "vocab.txt").read_text(encoding="utf-8").split("\n")) - 1]
    assert sizes[0] != sizes[1]
    assert code == 1 and f"vocab_size {sizes[0]}" in error and f"{sizes[1]} tokens" in error
    with pytest.raises(UserError, match="holds no config.json"):
        evaluate(tmp_path, suite, out)

    code = main(["evaluate", "--model", str(tiny_model), "--suite", str(suite), "--out", str(out),
                 "--tasks", "nope", "--wandb", "off"])
    assert code == 2 and "not in the suite" in capsys.readouterr().err

    # a retrieval language without data is found before any fine-tuning
    retrieval = _write_suite(tmp_path / "retrieval.toml", suite.read_text() + """
[tasks.tatoeba]
kind = "tatoeba"
folder = "tatoeba"
languages = ["de", "xx"]
""")
    code = main(["evaluate", "--model", str(tiny_model), "--suite", str(retrieval), "--out", str(out), "--wandb", "off"])
    assert code == 1 and "no Tatoeba data for language 'xx'" in capsys.readouterr().err and not out.exists()

    # more frozen layers than the model has: refused before training, nothing written
    deep = _write_suite(tmp_path / "deep.toml", suite.read_text().replace("epochs = 1", "epochs = 1\nfreeze_layers = 5"))
    code = main(["evaluate", "--model", str(tiny_model), "--suite", str(deep), "--out", str(out), "--wandb", "off"])
    assert code == 2 and "freeze_layers or keep_layers exceeds the 2 layers of model tiny" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    # more frozen layers than are kept
    kept = _write_suite(tmp_path / "kept.toml", suite.read_text().replace(
        "epochs = 1", "epochs = 1\nfreeze_layers = 2\nkeep_layers = 1"))
    code = main(["evaluate", "--model", str(tiny_model), "--suite", str(kept), "--out", str(out), "--wandb", "off"])
    assert code == 2 and "freeze_layers = 2 but keep_layers = 1" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_truncated_words_get_the_fallback_label():
    from mbert.transfer.tasks import TaskData

    task = TaskData("t", "ner", "en", ["B-PER", "O"], [], [], {})
    sentence = TaggedSentence(("a", "b", "c"), ("O", "O", "B-PER"))
    assert to_labels(task, [sentence], [[0]], "O") == [["B-PER", "O", "O"]]


def test_alignment_analysis_and_tracking(tiny_model, data_dir, tmp_path):
    suite = write_suite(
        tmp_path / "align.toml", data_dir, seeds=[1], epochs=1, max_length=48,
        tasks={"xnli": task(XNLI, ["en", "de"], max_train_examples=32, max_dev_examples=8, max_eval_examples=8),
               "tatoeba": task(TATOEBA, ["de"], max_eval_examples=20)},
        alignment={"enabled": True, "parallel": [["tatoeba/tatoeba.nld-eng.eng", "tatoeba/tatoeba.nld-eng.nld"]],
                   "steps": 3, "batch_size": 4, "max_pairs": 40},
        analysis={"enabled": True, "max_sentences": 20})
    out = tmp_path / "out"
    with Tracker(mode="offline", project="mbert-test", stage="evaluate", run_dir=tmp_path) as tracker:
        evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite), tracker)
        run_dir = tracker.run_path
    run_file = wait_until_finished(find_run_file(run_dir))
    manifest = json.loads((out / "manifest.json").read_text())
    stats = manifest["alignment"]["tiny"]
    assert stats["pairs"] > 0 and stats["links"] > 0
    assert any((out / "analysis").iterdir())  # the neutrality analysis wrote its files
    # W&B (offline), read back from the run file: per-task tables and charts, summary scores
    tables, values = logged_tables(run_file), summary_values(run_file)
    assert [row[0] for row in load_table(run_file, tables["eval/xnli/table"])["data"]] == ["en", "de"]
    assert "eval/xnli/bar_table" in tables and "eval/heatmap/table" in tables
    metrics = json.loads((out / "metrics.json").read_text())
    assert values["eval/xnli/de"] == pytest.approx(metrics["xnli"]["de"]["mean"])
    assert values["eval/xnli/transfer_gap"] == pytest.approx(
        metrics["xnli"]["en"]["mean"] - metrics["xnli"]["de"]["mean"], abs=1e-3)
    assert "eval/tatoeba/target_average" in values and "eval/tatoeba/transfer_gap" not in values
    assert not (out / ".work").exists()


def test_model_arguments_and_names(tiny_model, tmp_path):
    from mbert.transfer.checkpoints import name_models
    from mbert.transfer.cli import parse_models

    run = tmp_path / "run" / "pretrain"
    shutil.copytree(tiny_model, run / "model")
    parsed = parse_models([f"base={tiny_model}", str(run), str(tiny_model)])
    assert parsed == [("base", tiny_model), (None, run), (None, tiny_model)]
    named = name_models(parsed)
    assert [(c.name, c.path) for c in named] == [("base", tiny_model), ("pretrain", run / "model"),
                                                 ("tiny", tiny_model)]
    assert [c.name for c in name_models([tiny_model, tiny_model])] == ["tiny", "tiny-2"]
    with pytest.raises(UserError, match="two models are named 'a'"):
        name_models([("a", tiny_model), ("a", run)])


def test_models_listed_in_the_suite(tiny_model, data_dir, tmp_path):
    shutil.copytree(tiny_model, tmp_path / "ckpts" / "a")
    suite = write_suite(tmp_path / "models.toml", data_dir, seeds=[1],
                        models={"first": "ckpts/a"},  # relative to the suite file
                        tasks={"tatoeba": task(TATOEBA, ["de"], max_eval_examples=10)})
    result = evaluate(None, suite, tmp_path / "out", EvaluateSettings(suite=suite))
    assert list(result["models"]) == ["first"]
    assert json.loads((tmp_path / "out/manifest.json").read_text())["models"] == {"first": str(tmp_path / "ckpts/a")}


def test_reference_checkpoints_are_compared_beside_the_models(tiny_model, data_dir, tmp_path, capsys):
    """`evaluate.compare` (e.g. Google's mBERT) joins the evaluated models, also through the CLI."""
    from mbert.cli import main

    suite = write_suite(tmp_path / "compare.toml", data_dir, seeds=[1],
                        tasks={"tatoeba": task(TATOEBA, ["de"], max_eval_examples=10)})
    code = main(["--quiet", "evaluate", "--model", f"ours={tiny_model}", "--suite", str(suite),
                 "--out", str(tmp_path / "out"), "--set", f'evaluate.compare={{reference = "{tiny_model}"}}'])
    assert code == 0
    comparison = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert list(comparison) == ["ours", "reference"] and comparison["ours"] == comparison["reference"]
    assert "| language | ours | reference |" in (tmp_path / "out" / "summary.md").read_text()
    code = main(["--quiet", "evaluate", "--model", f"ours={tiny_model}", "--suite", str(suite),
                 "--out", str(tmp_path / "out2"), "--set", f'evaluate.compare={{ours = "{tiny_model}"}}'])
    assert code == 2 and "already a model's name" in capsys.readouterr().err  # invalid settings
    assert not (tmp_path / "out2").exists()


def test_learning_rate_is_chosen_on_the_source_dev_set(tiny_model, data_dir, tmp_path):
    """`learning_rates`: each rate is tried with the first seed, the best source-dev score wins and is
    used for the test scores (the same as fine-tuning with that rate alone); a task's own single
    `learning_rate` beats the suite's list."""
    mini = _mini_suite(tmp_path, data_dir, seeds="[1]").read_text()
    mini = mini.replace("epochs = 2\nlearning_rate = 3e-3\n", "epochs = 1\n")
    chosen = _write_suite(tmp_path / "lrs.toml", mini.replace("learning_rate = 5e-4\n",
                                                             "learning_rates = [1e-6, 3e-3]\n"))
    out = tmp_path / "lrs"
    metrics = evaluate(tiny_model, chosen, out, EvaluateSettings(suite=chosen, tasks=["udpos"]))["metrics"]
    detail = json.loads((out / "manifest.json").read_text())["details"]["tiny"]["udpos"]["1"]
    tried = {float(rate): dev for rate, dev in detail["learning_rate_dev_scores"].items()}
    assert set(tried) == {1e-6, 3e-3} and tried[3e-3] > tried[1e-6]
    assert detail["learning_rate"] == 3e-3 == max(tried, key=tried.get)

    fixed = _write_suite(tmp_path / "fixed.toml", mini.replace("learning_rate = 5e-4\n", "learning_rate = 3e-3\n"))
    direct = evaluate(tiny_model, fixed, tmp_path / "fixed", EvaluateSettings(suite=fixed, tasks=["udpos"]))
    assert direct["metrics"]["udpos"] == metrics["udpos"]

    suite = build(Suite, {"learning_rates": [1e-5, 1e-3], "tasks": {"p": {
        "kind": "pos", "train": "t", "test": "{lang}", "languages": ["en"], "learning_rate": 2e-4}}},
        base_dir=tmp_path)
    assert suite.hyper(suite.tasks["p"]).learning_rates is None
    assert suite.hyper(suite.tasks["p"]).learning_rate == 2e-4
