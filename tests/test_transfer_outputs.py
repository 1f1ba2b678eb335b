"""What `mbert evaluate` writes is what a user scores: the epoch best on the source dev set is the one
tested and written, words cut off by `max_length` get the commonest training tag, XTREME's scoring
of the Tatoeba and BUCC files gives the numbers in metrics.json, and a failure half-way leaves
nothing that looks complete (and an earlier result untouched).

The tiny random BERT (`tiny_model`, conftest.py) is fine-tuned for a few seconds per test."""

from __future__ import annotations

import json
import lzma
from collections import Counter
from pathlib import Path

import pytest
from helpers_transfer import TATOEBA, UDPOS, XNLI, task, write_suite
from test_transfer_eval import xtreme_accuracy, xtreme_read_label, xtreme_read_tag

import mbert.transfer.evaluate as evaluate_module
from mbert.transfer.evaluate import evaluate, is_complete
from mbert.transfer.settings import EvaluateSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_LENGTH = 24
TRAIN_EXAMPLES = 200


def xtreme_bucc_f1(labels: list[str], predictions: list[str]) -> float:
    """google-research/xtreme evaluate.py `bucc_f1`, over the lines of its label and prediction files."""
    gold = {tuple(line.split("\t")) for line in labels}
    found = {tuple(line.split("\t")) for line in predictions}
    correct = len(gold & found)
    if not correct:
        return 0.0
    precision, recall = correct / len(found), correct / len(gold)
    return 100 * 2 * precision * recall / (precision + recall)


def read_xtreme_training_tags(path: Path, sentences: int) -> list[str]:
    """Tags of the first `sentences` sentences of an XTREME `token<TAB>tag` file."""
    tags, count = [], 0
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            count += bool(tags)
            if count == sentences:
                break
            continue
        tags.append(line.split("\t")[1])
    return tags


def test_the_best_dev_epoch_is_scored_and_cut_off_words_get_the_commonest_tag(tiny_model, data_dir, tmp_path):
    """The learning rate climbs through all three epochs (warm-up over the whole run) until it is far
    too high, so the source dev score falls after the first epoch. The English test file is the dev
    file: its score must be the best dev score, not the last epoch's."""
    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
data = "{data_dir}"
seeds = [1]
epochs = 3
learning_rate = 0.1
warmup_ratio = 1.0
batch_size = 16
max_length = {MAX_LENGTH}
[tasks.udpos]
kind = "pos"
train = "udpos_xtreme/dev-en.tsv"
dev = "ud/pud/en_pud-ud-test.conllu"
test = "ud/pud/{{lang}}_pud-ud-test.conllu"
languages = ["en", "de"]
max_train_examples = {TRAIN_EXAMPLES}
max_dev_examples = 40
max_eval_examples = 40
""", encoding="utf-8")
    out = tmp_path / "out"
    metrics = evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite))["metrics"]
    details = json.loads((out / "manifest.json").read_text())["details"]["tiny"]["udpos"]["1"]
    dev = details["dev_scores"]
    assert len(dev) == 3 and dev[-1] < max(dev) - 1  # the case under test: the dev score drops
    assert details["best_epoch"] == dev.index(max(dev)) + 1
    assert metrics["udpos"]["en"]["seeds"][0] == pytest.approx(max(dev), abs=1e-3)
    gold = xtreme_read_tag(out / "labels/udpos/test-en.tsv")
    predicted = xtreme_read_tag(out / "predictions/udpos/test-en.tsv")
    flat = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    assert 100 * sum(g == p for g, p in flat) / len(flat) == pytest.approx(max(dev), abs=1e-3)

    # words beyond max_length (each word tokenized alone, [CLS] and [SEP] around) get the commonest
    # tag of the training examples, here NOUN; the labels' first entry (ADJ) would be wrong
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    commonest = Counter(read_xtreme_training_tags(data_dir / "udpos_xtreme/dev-en.tsv", TRAIN_EXAMPLES)
                        ).most_common(2)
    assert commonest[0][1] > commonest[1][1] and commonest[0][0] != "ADJ"
    from mbert.transfer.readers import read_conllu

    cut_words = 0
    for lang in ("en", "de"):
        sentences = read_conllu(data_dir / f"ud/pud/{lang}_pud-ud-test.conllu")[:40]
        predicted = xtreme_read_tag(out / f"predictions/udpos/test-{lang}.tsv")
        assert [len(s.words) for s in sentences] == [len(p) for p in predicted]
        for sentence, tags in zip(sentences, predicted):
            used = 2
            for index, word in enumerate(sentence.words):
                used += len(tokenizer(word, add_special_tokens=False)["input_ids"]) or 1
                if used > MAX_LENGTH:
                    assert set(tags[index:]) == {commonest[0][0]}, (lang, sentence.words[index:])
                    cut_words += len(tags) - index
                    break
    assert cut_words > 200


def _retrieval_data(data_dir: Path, root: Path, tokenizer) -> tuple[int, int]:
    """A data folder whose Tatoeba German side repeats every third English sentence verbatim, and whose
    BUCC zh-en dev adds 15 English sentences verbatim to the Chinese side, next to 5 real gold pairs.
    A random model retrieves verbatim copies and little else, so both scores lie well inside (0, 100).
    Returns (Tatoeba sentences, BUCC gold pairs)."""
    tatoeba = root / "tatoeba"
    tatoeba.mkdir(parents=True)
    kit = data_dir / "tatoeba"
    english = (kit / "tatoeba.deu-eng.eng").read_text(encoding="utf-8").split("\n")[:120]
    german = (kit / "tatoeba.deu-eng.deu").read_text(encoding="utf-8").split("\n")[:120]
    german = [en if i % 3 == 0 else de for i, (en, de) in enumerate(zip(english, german))]
    (tatoeba / "tatoeba.deu-eng.eng").write_text("\n".join(english) + "\n", encoding="utf-8")
    (tatoeba / "tatoeba.deu-eng.deu").write_text("\n".join(german) + "\n", encoding="utf-8")

    def read(name: str) -> dict[str, str]:
        lines = lzma.open(data_dir / "bucc2018" / name, "rt", encoding="utf-8").read().split("\n")
        return dict(line.split("\t", 1) for line in lines if line)

    zh, en = read("zh-en.dev.zh.xz"), read("zh-en.dev.en.xz")
    real_gold = [tuple(line.split("\t")) for line in
                 (data_dir / "bucc2018" / "zh-en.dev.gold").read_text(encoding="utf-8").split("\n") if line][:5]
    seen, english_ids = set(), []
    for sentence_id, text in en.items():  # distinct token sequences: a random model tells them apart
        key = tuple(tokenizer(text)["input_ids"])
        if key not in seen and sentence_id not in {t for _, t in real_gold}:
            seen.add(key)
            english_ids.append(sentence_id)
        if len(english_ids) == 150:
            break
    english_ids += [t for _, t in real_gold]
    chinese_ids = [s for s in zh if s not in {s for s, _ in real_gold}][:100] + [s for s, _ in real_gold]
    copies = {f"zh-copy-{n:03d}": english_ids[10 * n] for n in range(15)}
    bucc = root / "bucc2018"
    bucc.mkdir()
    (bucc / "zh-en.dev.en").write_text("".join(f"{i}\t{en[i]}\n" for i in english_ids), encoding="utf-8")
    (bucc / "zh-en.dev.zh").write_text("".join(f"{i}\t{zh[i]}\n" for i in chinese_ids)
                                       + "".join(f"{c}\t{en[e]}\n" for c, e in copies.items()), encoding="utf-8")
    gold = list(copies.items()) + real_gold
    (bucc / "zh-en.dev.gold").write_text("".join(f"{s}\t{t}\n" for s, t in gold), encoding="utf-8")
    return len(english), len(gold)


def test_retrieval_scores_recompute_from_the_xtreme_files(tiny_model, data_dir, tmp_path):
    from transformers import AutoTokenizer

    sentences, gold_pairs = _retrieval_data(data_dir, tmp_path / "data", AutoTokenizer.from_pretrained(tiny_model))
    suite = tmp_path / "retrieval.toml"
    suite.write_text(f"""
data = "{tmp_path / 'data'}"
seeds = [1]
[tasks.tatoeba]
kind = "tatoeba"
folder = "tatoeba"
languages = ["de"]
[tasks.bucc2018]
kind = "bucc"
folder = "bucc2018"
languages = ["zh"]
""", encoding="utf-8")
    out = tmp_path / "out"
    metrics = evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite))["metrics"]
    labels = xtreme_read_label(out / "labels/tatoeba/test-de.tsv")
    predictions = xtreme_read_label(out / "predictions/tatoeba/test-de.tsv")
    assert len(labels) == len(predictions) == sentences
    accuracy = xtreme_accuracy(labels, predictions)
    assert accuracy == pytest.approx(metrics["tatoeba"]["de"]["mean"], abs=1e-3)
    assert 33 <= accuracy < 60  # the verbatim third, and little else
    labels = xtreme_read_label(out / "labels/bucc2018/test-zh.tsv")
    predictions = xtreme_read_label(out / "predictions/bucc2018/test-zh.tsv")
    assert len(labels) == gold_pairs
    f1 = xtreme_bucc_f1(labels, predictions)
    assert f1 == pytest.approx(metrics["bucc2018"]["zh"]["mean"], abs=1e-3)
    assert 50 < f1 < 100  # the copies are mined, the real pairs mostly not


def test_a_failure_half_way_leaves_nothing_that_looks_complete(tiny_model, data_dir, tmp_path, monkeypatch):
    suite = tmp_path / "suite.toml"
    write_suite(suite, data_dir, seeds=[1], epochs=1, max_length=32,
                tasks={"xnli": task(XNLI, ["en", "de"], max_train_examples=16, max_dev_examples=8, max_eval_examples=8),
                       "tatoeba": task(TATOEBA, ["de"], max_eval_examples=10)})
    earlier = tmp_path / "earlier"
    evaluate(tiny_model, suite, earlier, EvaluateSettings(suite=suite))
    before = {p.relative_to(earlier): p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    finished = []

    def fails_after_the_first_task(*args, **kwargs):
        finished.append(sorted(p.name for p in tmp_path.glob(".*")))  # the first task's files exist by now
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate_module, "_retrieval", fails_after_the_first_task)
    for out in (tmp_path / "fresh", earlier):
        with pytest.raises(OSError, match="No space"):
            evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite))
        assert finished[-1], "the failure did not come half-way"
        # no staging folder left; only the finished fine-tuning run, kept for a rerun (units.py)
        hidden = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
        assert f".{out.name}.units" in hidden <= {".earlier.units", ".fresh.units"}
    assert not (tmp_path / "fresh").exists() and not is_complete(tmp_path / "fresh")
    assert is_complete(earlier)  # what the user had is untouched
    assert {p.relative_to(earlier): p.read_bytes() for p in earlier.rglob("*") if p.is_file()} == before


# ----------------------------------------------------------------------------- finished runs are kept

def _units_suite(path: Path, data_dir: Path, epochs: int = 1) -> Path:
    return write_suite(path, data_dir, seeds=[1, 2], epochs=epochs, learning_rate=3e-3, max_length=32,
                       tasks={"udpos": task(UDPOS, ["en", "de"], max_train_examples=40, max_dev_examples=10,
                                            max_eval_examples=20),
                              "xnli": task(XNLI, ["en", "de"], max_train_examples=16, max_dev_examples=8,
                                           max_eval_examples=8)})


@pytest.fixture
def count_fine_tuning(monkeypatch):
    """Counts fine-tuning runs; `fail_at = n` interrupts the n-th one (as Ctrl-C would)."""
    real = evaluate_module.fine_tune
    calls = {"n": 0, "fail_at": None}

    def counted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "fine_tune", counted)
    return calls


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name not in ("manifest.json", "resolved_config.toml")}


def test_an_interrupted_evaluation_redoes_only_the_runs_it_had_not_finished(tiny_model, data_dir, tmp_path,
                                                                           count_fine_tuning):
    """Four fine-tuning runs (2 tasks x 2 seeds); Ctrl-C in the third. The rerun fine-tunes only the
    third and fourth, and writes exactly what an uninterrupted evaluation writes."""
    suite = _units_suite(tmp_path / "suite.toml", data_dir)
    reference = tmp_path / "reference"
    evaluate(tiny_model, suite, reference, EvaluateSettings(suite=suite))
    assert count_fine_tuning["n"] == 4

    out = tmp_path / "eval"
    count_fine_tuning.update(n=0, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite))
    assert not out.exists() and len(list((tmp_path / ".eval.units").glob("*.json"))) == 2

    count_fine_tuning.update(n=0, fail_at=None)
    result = evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite))
    assert count_fine_tuning["n"] == 2
    assert _files(out) == _files(reference)  # metrics, predictions, summaries: byte for byte
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["units"]["reused"] == 2 and manifest["units"]["computed"] == 2
    assert manifest["details"] == json.loads((reference / "manifest.json").read_text())["details"]
    assert result["metrics"] == json.loads((reference / "metrics.json").read_text())


def _workers_suite(path: Path, data_dir: Path) -> Path:
    """udpos chooses its rate (one job: the choice, then both seeds); xnli has one job per seed."""
    return write_suite(path, data_dir, seeds=[1, 2], epochs=1, learning_rate=3e-3, max_length=32,
                       tasks={"udpos": task(UDPOS, ["en", "de"], max_train_examples=40, max_dev_examples=10,
                                            max_eval_examples=20, learning_rates=[1e-6, 3e-3]),
                              "xnli": task(XNLI, ["en", "de"], max_train_examples=16, max_dev_examples=8,
                                           max_eval_examples=8)})


def test_worker_processes_write_what_one_process_writes(tiny_model, data_dir, tmp_path):
    """`workers = 2` fine-tunes in two processes and writes byte for byte what one process writes,
    counting the units as computed (not reused), with or without --no-reuse: udpos chooses its rate
    (one job: the choice, then both seeds), xnli has one job per seed."""
    suite = _workers_suite(tmp_path / "suite.toml", data_dir)
    reference = tmp_path / "reference"
    evaluate(tiny_model, suite, reference, EvaluateSettings(suite=suite))
    expected = json.loads((reference / "manifest.json").read_text())
    assert expected["details"]["tiny"]["udpos"]["1"]["learning_rate_dev_scores"]  # the rate was chosen
    for reuse in (True, False):
        out = tmp_path / "eval"
        evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite, workers=2, threads=1, reuse=reuse))
        assert _files(out) == _files(reference)
        manifest = json.loads((out / "manifest.json").read_text())
        # units: the rate choice and 2 udpos runs, 2 xnli runs
        assert (manifest["units"]["computed"], manifest["units"]["reused"]) == (5, 0)
        assert manifest["details"] == expected["details"]


def test_finished_runs_follow_the_output_settings_only(tiny_model, data_dir, tmp_path, count_fine_tuning):
    """Runtime settings reuse every run; one more seed fine-tunes only that seed; other fine-tuning
    settings, other weights or --no-reuse fine-tune again."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    suite = _units_suite(tmp_path / "suite.toml", data_dir)
    out = tmp_path / "eval"
    evaluate(tiny_model, suite, out, EvaluateSettings(suite=suite))
    first = json.loads((out / "metrics.json").read_text())

    def runs(settings: EvaluateSettings, model=tiny_model) -> int:
        count_fine_tuning["n"] = 0
        evaluate(model, settings.suite, out, settings)
        return count_fine_tuning["n"]

    assert runs(EvaluateSettings(suite=suite, threads=1, device="cpu")) == 0
    assert json.loads((out / "metrics.json").read_text()) == first
    assert runs(EvaluateSettings(suite=suite, seeds=[1, 2, 3])) == 2  # seed 3 of each task
    assert json.loads((out / "metrics.json").read_text())["xnli"]["en"]["seeds"][:2] == first["xnli"]["en"]["seeds"]
    assert runs(EvaluateSettings(suite=_units_suite(tmp_path / "two.toml", data_dir, epochs=2))) == 4
    assert runs(EvaluateSettings(suite=suite, reuse=False)) == 4

    changed = tmp_path / "changed"  # the same model with one weight changed
    model = AutoModelForMaskedLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[5, 0] += 1.0
    model.save_pretrained(changed)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(changed)
    assert runs(EvaluateSettings(suite=suite), model=changed) == 4


def test_workers_start_only_for_units_still_to_compute(tiny_model, data_dir, tmp_path, monkeypatch):
    """With `workers = 2`, finished units are not sent to worker processes: a second evaluation of
    the same output starts no processes at all, and one missing unit is computed in this process
    (starting workers costs more than one job)."""
    suite = _workers_suite(tmp_path / "suite.toml", data_dir)
    pools = []
    real_pool = evaluate_module.process_pool

    def counting_pool(workers, **kwargs):
        pools.append(workers)
        return real_pool(workers, **kwargs)

    monkeypatch.setattr(evaluate_module, "process_pool", counting_pool)
    out = tmp_path / "eval"
    settings = EvaluateSettings(suite=suite, workers=2, threads=1)
    evaluate(tiny_model, suite, out, settings)
    assert pools == [2]  # jobs: udpos (rate choice + both seeds), xnli seed 1, xnli seed 2
    first = _files(out)

    evaluate(tiny_model, suite, out, settings)
    manifest = json.loads((out / "manifest.json").read_text())
    assert pools == [2] and (manifest["units"]["computed"], manifest["units"]["reused"]) == (0, 5)
    assert _files(out) == first

    units = tmp_path / ".eval.units"
    choice = [p for p in units.glob("*.json") if "tried" in json.loads(p.read_text())]
    assert len(choice) == 1
    choice[0].unlink()  # udpos must choose its rate again (its two runs are then found)
    evaluate(tiny_model, suite, out, settings)
    manifest = json.loads((out / "manifest.json").read_text())
    assert pools == [2] and (manifest["units"]["computed"], manifest["units"]["reused"]) == (1, 4)
    assert _files(out) == first
