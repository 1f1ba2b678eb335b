"""Alignment fine-tuning (mbert.transfer.alignment): eflomal links on real Tatoeba pairs, loss behaviour,
and the regulariser that keeps English in place."""

from __future__ import annotations

import copy

import pytest
import torch

from mbert.errors import UserError
from mbert.transfer.alignment import (
    AlignedPair, align_model, eflomal_links, prepare_aligned_pairs, read_lines, split_words, word_vectors)
from mbert.transfer.retrieval import encoder_of

PAIRS = 400
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def aligned_words(model, pairs: list[AlignedPair], pad_id: int) -> tuple[float, torch.Tensor]:
    """(mean distance between the vectors of aligned words, every English word vector), last layer."""
    encoder = encoder_of(model)
    was_training = encoder.training
    encoder.eval()
    distances, english = [], []
    with torch.no_grad():
        for start in range(0, len(pairs), 32):
            batch = pairs[start:start + 32]
            common = dict(pad_id=pad_id, layer=None, pooling="mean", device="cpu")
            source = word_vectors(encoder, [p.source_ids for p in batch], [p.source_words for p in batch], **common)
            target = word_vectors(encoder, [p.target_ids for p in batch], [p.target_words for p in batch], **common)
            for row, pair in enumerate(batch):
                distances += [(source[row, s] - target[row, t]).norm() for s, t in pair.links]
                english += [source[row, w] for w in sorted({w for w in pair.source_words if w is not None})]
    encoder.train(was_training)
    return float(torch.stack(distances).mean()), torch.stack(english)


@pytest.fixture(scope="module")
def german_english(data_dir):
    tatoeba = data_dir / "tatoeba"
    return [(tatoeba / "tatoeba.deu-eng.eng", tatoeba / "tatoeba.deu-eng.deu")]


def test_words_are_the_tokenizers_words(tiny_bert):
    _, tokenizer = tiny_bert
    words = split_words(tokenizer, ["Mary said she didn't know.", "你好世界!"])
    assert words == [["Mary", "said", "she", "didn", "'", "t", "know", "."], ["你", "好", "世", "界", "!"]]


def test_eflomal_links_are_oriented_source_to_target(data_dir):
    english = [line.split() for line in read_lines(data_dir / "tatoeba" / "tatoeba.deu-eng.eng")[:300]]
    shifted = [["Oh", ","] + words for words in english]  # target word i+2 translates source word i
    links = eflomal_links(english, shifted)
    flat = [(s, t) for sentence in links for s, t in sentence]
    assert len(flat) > 0.8 * sum(len(words) for words in english)
    assert sum(t == s + 2 for s, t in flat) / len(flat) > 0.95


def test_alignment_pulls_aligned_words_together_and_regulariser_anchors_english(tiny_bert, german_english):
    model, tokenizer = tiny_bert
    prepared = prepare_aligned_pairs(tokenizer, german_english, max_pairs=PAIRS + 100)
    training, held_out = prepared[:PAIRS], prepared[PAIRS:]
    pad = tokenizer.pad_token_id
    distance_before, english_before = aligned_words(model, held_out, pad)
    shift, distance = {}, {}
    for regularize in (True, False):
        tuned = copy.deepcopy(model)
        stats = align_model(tuned, tokenizer, german_english, steps=30, learning_rate=1e-3, batch_size=16,
                            regularize=regularize, aligned_pairs=training, seed=1)
        assert stats["pairs"] > 0.9 * PAIRS and stats["links"] > 3 * stats["pairs"]
        assert stats["loss_end"] < stats["loss_start"]
        assert stats["seconds"] > 0 and stats["regularize"] is regularize
        distance[regularize], english = aligned_words(tuned, held_out, pad)
        shift[regularize] = (english - english_before).norm(dim=-1).mean()
    # measured on sentence pairs not used for training
    assert distance[True] < 0.8 * distance_before
    assert distance[False] < distance[True]
    assert shift[True] < 0.7 * shift[False]


def test_task_model_is_tuned_in_place_head_untouched(tiny_bert, german_english):
    from transformers import BertForTokenClassification

    model, tokenizer = tiny_bert
    task_model = BertForTokenClassification(model.config)
    task_model.bert.load_state_dict(model.state_dict(), strict=False)
    head = copy.deepcopy(task_model.classifier.state_dict())
    embeddings = task_model.bert.embeddings.word_embeddings.weight.clone()
    align_model(task_model, tokenizer, german_english, steps=2, learning_rate=1e-3, batch_size=8,
                max_pairs=200, word_pooling="first")
    assert not torch.equal(task_model.bert.embeddings.word_embeddings.weight, embeddings)
    for name, value in task_model.classifier.state_dict().items():
        assert torch.equal(value, head[name])


def test_bad_parallel_input_is_a_user_error(tiny_bert, tmp_path):
    model, tokenizer = tiny_bert
    (tmp_path / "en.txt").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "de.txt").write_text("eins\n", encoding="utf-8")
    with pytest.raises(UserError, match="not line-aligned"):
        align_model(model, tokenizer, [(tmp_path / "en.txt", tmp_path / "de.txt")], steps=1,
                    learning_rate=1e-4, batch_size=2)
    with pytest.raises(UserError, match="does not exist"):
        align_model(model, tokenizer, [(tmp_path / "en.txt", tmp_path / "missing.txt")], steps=1,
                    learning_rate=1e-4, batch_size=2)
