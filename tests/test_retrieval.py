"""Tatoeba retrieval and BUCC mining (mbert.transfer.retrieval) with a tiny random BERT on real kit data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbert.errors import UserError
from mbert.transfer.retrieval import (
    best_f1_threshold, center_vectors, encode_sentences, evaluate_bucc, evaluate_tatoeba,
    margin_candidates, mine_and_score, read_bucc, read_lines, read_tatoeba, retrieval_accuracy,
    tatoeba_scores)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def xtreme_bucc_f1(gold: set, predicted: list) -> float:
    """google-research/xtreme evaluate.py `bucc_f1` over the lines of its label and prediction files."""
    labels = {tuple(f"{s}\t{t}".split("\t")) for s, t in gold}
    predictions = {tuple(f"{s}\t{t}".split("\t")) for s, t in predicted}
    correct = len(labels & predictions)
    if not correct:
        return 0.0
    precision, recall = correct / len(predictions), correct / len(labels)
    return 100 * 2 * precision * recall / (precision + recall)


def _unique_by_tokens(tokenizer, sentences: list[str], limit: int) -> list[str]:
    seen, chosen = set(), []
    for sentence in sentences:
        key = tuple(tokenizer(sentence)["input_ids"])
        if key not in seen:
            seen.add(key)
            chosen.append(sentence)
        if len(chosen) == limit:
            break
    return chosen


# ----------------------------------------------------------------------------- Tatoeba

def test_identical_sentences_are_retrieved_perfectly(tiny_bert, data_dir, tmp_path):
    model, tokenizer = tiny_bert
    german = read_lines(data_dir / "tatoeba" / "tatoeba.deu-eng.deu")
    sentences = _unique_by_tokens(tokenizer, german, 120)
    text = "\n".join(sentences) + "\n"
    (tmp_path / "tatoeba.deu-eng.deu").write_text(text, encoding="utf-8")
    (tmp_path / "tatoeba.deu-eng.eng").write_text(text, encoding="utf-8")
    result = evaluate_tatoeba(model, tokenizer, tmp_path, ["de"], batch_size=16)
    assert result == {"de": {"xx->en": 100.0, "en->xx": 100.0, "mean": 100.0}}


def test_real_tatoeba_random_model_is_near_chance_in_both_directions(tiny_bert, data_dir):
    model, tokenizer = tiny_bert
    tatoeba = data_dir / "tatoeba"
    result = evaluate_tatoeba(model, tokenizer, tatoeba, ["de", "zh"], max_sentences=200, batch_size=32)
    assert set(result) == {"de", "zh"}
    for lang, scores in result.items():
        # reference: brute-force cosine nearest neighbour in each direction, separately
        xx_text, en_text = read_tatoeba(tatoeba, lang, 200)
        xx = torch.tensor(encode_sentences(model, tokenizer, xx_text)[2])
        en = torch.tensor(encode_sentences(model, tokenizer, en_text)[2])
        cosine = torch.nn.functional.cosine_similarity(xx[:, None, :], en[None, :, :], dim=-1)
        expected_forward = 100 * (cosine.argmax(1) == torch.arange(200)).float().mean().item()
        expected_backward = 100 * (cosine.argmax(0) == torch.arange(200)).float().mean().item()
        assert scores["xx->en"] == pytest.approx(expected_forward)
        assert scores["en->xx"] == pytest.approx(expected_backward)
        assert scores["mean"] == pytest.approx((expected_forward + expected_backward) / 2)
        assert scores["mean"] < 25  # a random model does not translate
    assert result["de"]["xx->en"] != result["de"]["en->xx"] or result["zh"]["xx->en"] != result["zh"]["en->xx"]


def test_pooling_excludes_special_and_padding_tokens(tiny_bert):
    model, tokenizer = tiny_bert
    sentences = ["Das ist ein ziemlich langer Satz mit vielen Wörtern.", "Kurz."]
    batched = encode_sentences(model, tokenizer, sentences, layers=[0, None], batch_size=2)
    for i, sentence in enumerate(sentences):
        encoded = tokenizer(sentence, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**encoded, output_hidden_states=True).hidden_states
        for layer in (0, 2):
            manual = hidden[layer][0, 1:-1].mean(0).numpy()  # without [CLS] and [SEP]
            np.testing.assert_allclose(batched[layer][i], manual, rtol=1e-4, atol=1e-5)


def test_centering_is_per_language_and_recovers_translations():
    rng = np.random.default_rng(0)
    english = rng.normal(size=(50, 16))
    foreign = 0.1 * english + 10 * rng.normal(size=(1, 16))  # a large language-specific offset
    english_shifted = english + 10 * rng.normal(size=(1, 16))
    assert retrieval_accuracy(foreign, english_shifted) < 50
    centred = tatoeba_scores(center_vectors(foreign), center_vectors(english_shifted))
    assert centred == {"xx->en": 100.0, "en->xx": 100.0, "mean": 100.0}
    # one shared mean for both languages leaves the offset between them in place
    joint = np.concatenate([foreign, english_shifted]).mean(0)
    assert retrieval_accuracy(foreign - joint, english_shifted - joint) < 50


def test_tatoeba_centering_on_real_data_uses_each_side_mean(tiny_bert, data_dir):
    model, tokenizer = tiny_bert
    tatoeba = data_dir / "tatoeba"
    raw = evaluate_tatoeba(model, tokenizer, tatoeba, ["de"], max_sentences=200)
    centred = evaluate_tatoeba(model, tokenizer, tatoeba, ["de"], max_sentences=200, center=True)
    xx_text, en_text = read_tatoeba(tatoeba, "de", 200)
    xx = encode_sentences(model, tokenizer, xx_text)[2]
    en = encode_sentences(model, tokenizer, en_text)[2]
    assert centred["de"] == tatoeba_scores(xx - xx.mean(0), en - en.mean(0))
    assert centred["de"] != raw["de"]


def test_language_codes_map_to_laser_files_and_missing_ones_are_listed(tiny_bert, data_dir, tmp_path):
    xx, en = read_tatoeba(data_dir / "tatoeba", "zh", 5)  # zh -> cmn
    assert len(xx) == len(en) == 5
    assert read_tatoeba(data_dir / "tatoeba", "cmn", 5) == (xx, en)
    model, tokenizer = tiny_bert
    with pytest.raises(UserError, match=r"'xx'.*available: af, ar, .*zh"):
        evaluate_tatoeba(model, tokenizer, data_dir / "tatoeba", ["de", "xx"])
    with pytest.raises(UserError, match="layers 0 \\(embeddings\\) to 2"):
        evaluate_tatoeba(model, tokenizer, data_dir / "tatoeba", ["de"], layer=3)
    (tmp_path / "tatoeba.deu-eng.deu").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "tatoeba.deu-eng.eng").write_text("a\n", encoding="utf-8")
    with pytest.raises(UserError, match="not line-aligned"):
        read_tatoeba(tmp_path, "de")


# ----------------------------------------------------------------------------- BUCC

def test_margin_scores_match_the_ratio_margin_formula():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    mined = margin_candidates(x, y, k=2)
    # x0: NN sims in y {1, .6} mean .8; y0: NN sims in x {1, 0} mean .5 -> 1 / ((.8 + .5) / 2)
    # x1: NN sims {1, .8} mean .9; y2: {1, 0} mean .5 -> 1 / ((.9 + .5) / 2)
    assert [(i, j) for i, j, _ in mined] == [(0, 0), (1, 2)]
    assert [s for _, _, s in mined] == pytest.approx([1 / 0.65, 1 / 0.7])


def test_best_f1_threshold_matches_hand_computation():
    candidates = {("s1", "t1"): 0.9, ("s2", "t2"): 0.8, ("s3", "t9"): 0.7, ("s4", "t4"): 0.6,
                  ("s5", "t8"): 0.5}
    gold = {("s1", "t1"), ("s2", "t2"), ("s4", "t4"), ("s6", "t6")}
    best = best_f1_threshold(candidates, gold)
    assert best["precision"] == pytest.approx(75.0)  # 3 of the top 4
    assert best["recall"] == pytest.approx(75.0)  # 3 of 4 gold pairs
    assert best["f1"] == pytest.approx(75.0)
    assert best["threshold"] == pytest.approx(0.55)


def test_bucc_mining_finds_identical_sentences_exactly(tiny_bert, data_dir, tmp_path):
    model, tokenizer = tiny_bert
    bucc = data_dir / "bucc2018"
    english = _unique_by_tokens(tokenizer, [line.split("\t", 1)[1] for line in
                                            read_lines(bucc / "zh-en.dev.en.xz")[:400]], 150)
    chinese = [line.split("\t", 1)[1] for line in read_lines(bucc / "zh-en.dev.zh.xz")[:120]]
    copies = english[::10]  # 15 English sentences also appear, verbatim, on the other side
    source = chinese + copies
    (tmp_path / "zh-en.dev.zh").write_text(
        "".join(f"zh-{i:09d}\t{s}\n" for i, s in enumerate(source)), encoding="utf-8")
    (tmp_path / "zh-en.dev.en").write_text(
        "".join(f"en-{i:09d}\t{s}\n" for i, s in enumerate(english)), encoding="utf-8")
    gold = [(f"zh-{len(chinese) + n:09d}", f"en-{10 * n:09d}") for n in range(len(copies))]
    (tmp_path / "zh-en.dev.gold").write_text("".join(f"{s}\t{t}\n" for s, t in gold), encoding="utf-8")
    predictions: dict = {}
    result = evaluate_bucc(model, tokenizer, tmp_path, ["zh-en"], batch_size=32, predictions=predictions)["zh-en"]
    assert result["f1"] == pytest.approx(100.0)
    assert predictions["zh-en"] == (sorted(gold), set(gold))  # the mined pairs XTREME's file lists
    assert result["precision"] == pytest.approx(100.0) and result["recall"] == pytest.approx(100.0)
    assert result["threshold"] > 1.0  # identical vectors have the largest ratio margin


def test_bucc_real_dev_capped_keeps_every_gold_pair(tiny_bert, data_dir):
    model, tokenizer = tiny_bert
    source, target, gold = read_bucc(data_dir / "bucc2018", "zh-en", max_sentences=300)
    assert len(gold) == 257
    assert len(source) == 300 and len(target) == 300
    assert {s for s, _ in gold} <= set(source) and {t for _, t in gold} <= set(target)
    predictions: dict = {}
    result = evaluate_bucc(model, tokenizer, data_dir / "bucc2018", ["zh-en"], max_sentences=300,
                           predictions=predictions)
    assert set(result["zh-en"]) == {"f1", "precision", "recall", "threshold"}
    assert 0 <= result["zh-en"]["f1"] < 50  # random model: mining is poor, but it ran end to end
    predicted, gold_pairs = predictions["zh-en"]
    assert gold_pairs == gold and xtreme_bucc_f1(gold, predicted) == pytest.approx(result["zh-en"]["f1"])
    with pytest.raises(UserError, match="no BUCC file de-en.dev.de"):
        evaluate_bucc(model, tokenizer, data_dir / "bucc2018", ["de-en"])


def test_pairs_above_the_threshold_score_the_same_f1_with_xtremes_scorer():
    """The prediction file holds the mined pairs above the best-F1 threshold, so XTREME's bucc_f1
    over it and the gold file gives our F1: here 2 right pairs kept, 1 wrong one cut off."""
    source = {"s1": "one", "s2": "two", "s3": "three"}
    target = {"t1": "uno", "t2": "dos", "t3": "tres", "t4": "cuatro"}
    vectors = {"one": [1, 0, 0, 0], "two": [0, 1, 0, 0], "three": [0, 0, 1, 0], "uno": [1, 0, 0, 0],
               "dos": [0, 1, 0.05, 0], "tres": [0, 0, 0, 1], "cuatro": [0, 0.3, 0.7, 0.3]}
    src = np.array([vectors[text] for text in source.values()], dtype=np.float32)
    trg = np.array([vectors[text] for text in target.values()], dtype=np.float32)
    gold = {("s1", "t1"), ("s2", "t2"), ("s3", "t3")}
    predicted: list = []
    result = mine_and_score(source, target, gold, src, trg, k=2, predicted=predicted)
    assert predicted == [("s1", "t1"), ("s2", "t2")]
    assert result["f1"] == pytest.approx(80.0) == xtreme_bucc_f1(gold, predicted)


def test_mine_and_score_maps_duplicate_texts_to_every_id():
    source = {"s1": "hello", "s2": "hello", "s3": "other"}
    target = {"t1": "hello", "t2": "different"}
    vectors = {"hello": [1.0, 0.0, 0.0], "other": [0.0, 1.0, 0.0], "different": [0.0, 0.0, 1.0]}
    src = np.array([vectors[t] for t in ["hello", "other"]])
    trg = np.array([vectors[t] for t in ["hello", "different"]])
    predicted: list = []
    result = mine_and_score(source, target, {("s1", "t1"), ("s2", "t1")}, src, trg, k=1, predicted=predicted)
    assert result["f1"] == pytest.approx(100.0)
    assert predicted == [("s1", "t1"), ("s2", "t1")]
