"""What pretraining feeds the model, checked over many batches and several epochs: masking never
touches special tokens, masks are redrawn every epoch, every instance is seen once per epoch in a
new order, the NSP and short-sequence shares are the configured ones, and a run resumed inside its
second epoch ends bit-identical to an uninterrupted one.

Inputs are made from the data kit (see helpers_pretrain.py); the model is the `tiny` preset."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_pretrain import make_mixture, make_vocab, tiny_settings  # noqa: E402

from mbert.corpus.layout import find_corpus  # noqa: E402
from mbert.pretrain import instances as I  # noqa: E402
from mbert.pretrain.batching import Vocabulary, make_batch, mask_sequence  # noqa: E402
from mbert.pretrain.distributed import Distributed  # noqa: E402
from mbert.pretrain.inputs import TrainingData, continuation_table, input_fingerprint, load_tokenizer, \
    prepare_data  # noqa: E402
from mbert.pretrain.token_store import build_token_store  # noqa: E402
from mbert.pretrain.train import pretrain  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vocab_dir(data_dir: Path, tmp_path_factory) -> Path:
    return make_vocab(data_dir, tmp_path_factory.mktemp("vocab") / "vocab")


@pytest.fixture(scope="module")
def small_corpus(data_dir: Path, tmp_path_factory) -> Path:
    """Three documents per language, one of them held out: an epoch is ~30 instances, 4 steps of 8."""
    return make_mixture(data_dir, tmp_path_factory.mktemp("small") / "mixture", max_docs=3)


@pytest.fixture(scope="module")
def large_store(data_dir: Path, vocab_dir: Path, tmp_path_factory):
    """The token store of 300 kit documents in 5 languages: enough instances for tight shares."""
    root = tmp_path_factory.mktemp("large")
    corpus = make_mixture(data_dir, root / "mixture", langs=("en", "de", "fr", "es", "it"), max_docs=60, shards=1)
    return build_token_store(find_corpus(corpus).shards, load_tokenizer(vocab_dir), root / "store", "fp", workers=1)


def vocabulary(vocab_dir: Path) -> tuple[Vocabulary, object]:
    tokenizer = load_tokenizer(vocab_dir)
    return Vocabulary.from_tokenizer(tokenizer, continuation_table(tokenizer)), tokenizer


def prepared_data(corpus: Path, vocab: Path, out: Path, **overrides) -> TrainingData:
    """A run's training data as `pretrain` prepares it: `step_batches(step)` is exactly what step `step` trains on."""
    settings = tiny_settings(**{"steps": 100, **overrides})
    folder, tokenizer = find_corpus(corpus), load_tokenizer(vocab)
    return prepare_data(folder, tokenizer, out, settings, input_fingerprint(folder, tokenizer),
                        Distributed(cuda=False))


def seen_instances(data: TrainingData, steps: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(unmasked token ids, masked positions) of every sequence of steps 1..`steps`, in order."""
    seen = []
    for step in range(1, steps + 1):
        _, batches = data.step_batches(step)
        for batch in batches:
            original = batch.input_ids.clone().view(-1)
            original[batch.masked_positions] = batch.masked_labels
            original = original.view_as(batch.input_ids)
            width = batch.input_ids.shape[1]
            for row in range(len(original)):
                ids = original[row][original[row] != data.vocab.pad].tolist()
                positions = batch.masked_positions[(batch.masked_positions // width) == row] % width
                seen.append((tuple(ids), tuple(positions.tolist())))
    return seen


def instance_ids(data: TrainingData) -> list[tuple[int, ...]]:
    """Every training instance as the token ids the model should see ([CLS] A [SEP])."""
    tokens, vocab = data.store.tokens, data.vocab
    return [tuple([vocab.cls, *tokens[row[I.A_START]:row[I.A_START] + row[I.A_LEN]].tolist(), vocab.sep])
            for row in data.sources["mlm"].instances]


# ----------------------------------------------------------------------------- masking

def test_no_special_token_is_ever_a_target_or_a_replacement(small_corpus, vocab_dir, tmp_path):
    data = prepared_data(small_corpus, vocab_dir, tmp_path / "out", batch_size=16, nsp=True)
    vocab = data.vocab
    tokenizer = load_tokenizer(vocab_dir)
    structural = torch.tensor([vocab.cls, vocab.sep, vocab.pad, vocab.mask])
    all_special = torch.tensor(tokenizer.all_special_ids)
    assert tokenizer.unk_token_id in all_special.tolist()
    targets = replaced = 0
    for step in range(1, 41):  # several epochs of real instances, each with new masks
        for batch in data.step_batches(step)[1]:
            flat = batch.input_ids.view(-1)
            original = flat.clone()
            original[batch.masked_positions] = batch.masked_labels
            assert not torch.isin(batch.masked_labels, structural).any()  # [CLS] [SEP] [PAD] never targets
            unmasked = torch.ones_like(flat, dtype=torch.bool)
            unmasked[batch.masked_positions] = False
            assert torch.equal(flat[unmasked], original[unmasked])  # nothing else is touched
            inputs = flat[batch.masked_positions]
            random = inputs[(inputs != vocab.mask) & (inputs != batch.masked_labels)]
            assert not torch.isin(random, all_special).any()  # no [UNK], [CLS]... as a random token
            targets += len(batch.masked_labels)
            replaced += len(random)
    assert targets > 1000 and replaced > 50
    # the random 10% over 2M tokens: 30,000 draws never hit a special token ([UNK] included)
    ids = np.random.default_rng(0).choice(vocab.replacement_ids, size=2_000_000)
    masked, chosen, labels = mask_sequence(ids, np.ones(len(ids), bool), vocab, 0.15, False,
                                           np.random.default_rng(1))
    draws = masked[chosen][(masked[chosen] != vocab.mask) & (masked[chosen] != labels)]
    assert len(draws) > 25_000 and not np.isin(draws, all_special.numpy()).any()


def test_tlm_masks_only_words_of_both_sentences_for_any_seed(vocab_dir):
    vocab, tokenizer = vocabulary(vocab_dir)
    tokens = np.arange(5, 105, dtype=np.int32)
    rows = np.array([[0, 5, 10, 7, 0, 2, 0]])  # [CLS] a(5) [SEP] b(7) [SEP]
    words = set(range(1, 6)) | set(range(7, 14))
    masked_sides = Counter()
    for seed in range(300):
        batch = make_batch(tokens, rows, [(seed, 1, 0, 0)], vocab, max_seq_length=64, mask_prob=0.15,
                           whole_word=False, nsp=False, restart_positions=True, language_types=True)
        chosen = set(batch.masked_positions.tolist())
        assert chosen and chosen <= words, seed
        assert batch.position_ids[0, :15].tolist() == list(range(7)) + list(range(8))
        assert batch.input_ids[0, 0] == tokenizer.cls_token_id
        assert batch.input_ids[0, 6] == batch.input_ids[0, 14] == tokenizer.sep_token_id
        masked_sides.update({"first" if p < 6 else "second" for p in chosen})
    assert masked_sides["first"] > 50 and masked_sides["second"] > 50  # both languages are masked


def test_masks_are_redrawn_every_epoch_and_each_instance_is_seen_once_per_epoch(small_corpus, vocab_dir,
                                                                              tmp_path):
    data = prepared_data(small_corpus, vocab_dir, tmp_path / "out", batch_size=8)
    expected = Counter(instance_ids(data))
    n = sum(expected.values())
    assert 8 <= n <= 60  # several steps per epoch, several epochs in a few dozen steps
    steps = -(-3 * n // 8)
    seen = seen_instances(data, steps)
    epochs = [seen[k * n:(k + 1) * n] for k in range(3)]
    orders = []
    for epoch in epochs:
        assert Counter(ids for ids, _ in epoch) == expected  # every instance exactly once
        orders.append([ids for ids, _ in epoch])
    assert orders[0] != orders[1] != orders[2]  # a new order each epoch
    unique = {ids for ids, count in expected.items() if count == 1}
    masks = [{ids: positions for ids, positions in epoch if ids in unique} for epoch in epochs]
    differ = sum(masks[0][ids] != masks[1][ids] for ids in unique)
    assert differ >= 0.8 * len(unique)  # dynamic masking: a new mask when an instance comes back
    # and the masks of a step do not depend on the process: a second preparation draws the same
    again = prepared_data(small_corpus, vocab_dir, tmp_path / "again", batch_size=8)
    assert seen_instances(again, 3) == seen[:24]


def test_tlm_ratio_is_the_share_of_tlm_steps(small_corpus, vocab_dir, data_dir, tmp_path):
    from mbert.config import build
    from mbert.pretrain.settings import TlmPair

    tatoeba = data_dir / "tatoeba"
    pair = build(TlmPair, {"src": tatoeba / "tatoeba.deu-eng.deu", "tgt": tatoeba / "tatoeba.deu-eng.eng",
                           "src_lang": "de", "tgt_lang": "en"})
    for ratio in (0.3, 0.8):
        data = prepared_data(small_corpus, vocab_dir, tmp_path / str(ratio), steps=600, batch_size=2,
                             tlm=[pair], tlm_ratio=ratio)
        steps = [data.step_batches(step) for step in range(1, 601)]
        share = sum(kind == "tlm" for kind, _ in steps) / len(steps)
        assert abs(share - ratio) < 0.06, (ratio, share)  # 3 standard deviations
        for kind, batches in steps[:50]:  # a TLM step trains on sentence pairs, positions restarting
            assert (batches[0].position_ids is not None) == (kind == "tlm")


# ----------------------------------------------------------------------------- instances

def test_nsp_gives_half_random_next_segments(large_store):
    docs = np.arange(large_store.n_documents)
    shares = []
    for seq_len in (64, 128):
        for seed in range(3):
            rows = I.build_instances(large_store, docs, seq_len, 0.1, True, np.random.default_rng(seed))
            shares.append(rows[:, I.RANDOM_NEXT])
            # an actual next segment follows its A (truncation may trim either end) in the same document
            actual = rows[rows[:, I.RANDOM_NEXT] == 0]
            assert (actual[:, I.B_START] >= actual[:, I.A_START] + actual[:, I.A_LEN]).all()
            assert (actual[:, I.LANG_A] == actual[:, I.LANG_B]).all()
    pooled = np.concatenate(shares)
    assert len(pooled) > 10_000
    assert abs(pooled.mean() - 0.5) < 0.02, pooled.mean()  # ~5 standard deviations


def test_instances_written_while_made_equal_the_built_ones(large_store, tmp_path, monkeypatch):
    """The instance index is streamed to disk block by block (memory stays one block) and read back
    memory-mapped; it must be exactly what building it in memory gives, across block boundaries."""
    monkeypatch.setattr(I._Rows, "BLOCK", 500)
    docs = np.arange(large_store.n_documents)
    built = I.build_instances(large_store, docs, 64, 0.1, True, np.random.default_rng(4))
    with open(tmp_path / "rows.bin", "wb") as handle:
        count = I.write_instances(handle, large_store, docs, 64, 0.1, True, np.random.default_rng(4))
    assert count == len(built) > 1500  # several blocks
    assert (tmp_path / "rows.bin").stat().st_size == count * I.COLUMNS * 8
    assert np.array_equal(I.open_instances(tmp_path / "rows.bin", count), built)
    assert I.open_instances(tmp_path / "none.bin", 0).shape == (0, I.COLUMNS)


def test_short_seq_prob_is_the_share_of_short_instances(large_store):
    """Sentences are cut into pieces of at most 4 tokens (of the real token stream), so an instance
    ends within a few tokens of its target: one that stops short of the maximum length while its
    document goes on was given a short target."""
    offsets = np.asarray(large_store.sentence_offsets)
    doc_offsets = np.asarray(large_store.doc_offsets)
    pieces, doc_pieces = [0], [0]
    for doc in range(large_store.n_documents):
        for sentence in range(doc_offsets[doc], doc_offsets[doc + 1]):
            pieces.extend(range(int(offsets[sentence]) + 4, int(offsets[sentence + 1]), 4))
            pieces.append(int(offsets[sentence + 1]))
        doc_pieces.append(len(pieces) - 1)
    store = dataclasses.replace(large_store, sentence_offsets=np.asarray(pieces),
                                doc_offsets=np.asarray(doc_pieces))
    doc_end = np.asarray(pieces)[np.asarray(doc_pieces)[1:]]
    docs = np.arange(store.n_documents)
    for probability in (0.0, 0.3):
        rows = I.build_instances(store, docs, 64, probability, False, np.random.default_rng(7))
        ends = rows[:, I.A_START] + rows[:, I.A_LEN]
        goes_on = ends < doc_end[np.searchsorted(doc_end, rows[:, I.A_START], side="right")]
        assert goes_on.sum() > 800
        share = (rows[goes_on, I.A_LEN] < 62).mean()
        assert abs(share - probability) < 0.05, (probability, share)


# ----------------------------------------------------------------------------- resume across epochs

class InterruptAt:
    """A tracker that stops the run (like Ctrl-C) when step `step` is logged."""

    def __init__(self, step: int) -> None:
        self.step = step

    def log(self, metrics: dict, step: int | None = None) -> None:
        if metrics["pretrain/step"] == self.step:
            raise KeyboardInterrupt

    def summary(self, metrics: dict) -> None:
        pass


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().split("\n") if line]


def test_resume_inside_the_second_epoch_is_bit_identical(small_corpus, vocab_dir, tmp_path):
    settings = dict(steps=10, batch_size=8, checkpoint_every=3, eval_every=3, keep_checkpoints=2)
    instances = len(prepared_data(small_corpus, vocab_dir, tmp_path / "count", **settings).sources["mlm"].instances)
    # the checkpoint resumed from (step 6) lies inside the second epoch; the run goes on into a third
    assert 6 * 8 // instances == 1 and 6 * 8 % instances and 10 * 8 > 2 * instances
    reference = tmp_path / "reference" / "pretrain"
    pretrain(small_corpus, vocab_dir, reference, tiny_settings(**settings))
    resumed = tmp_path / "resumed" / "pretrain"
    with pytest.raises(KeyboardInterrupt):
        pretrain(small_corpus, vocab_dir, resumed, tiny_settings(**settings), tracker=InterruptAt(8))
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["step-3", "step-6"]
    pretrain(small_corpus, vocab_dir, resumed, tiny_settings(**settings), resume=True)
    for out in (reference, resumed):  # keep_checkpoints = 2: the older ones are deleted
        assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-10", "step-9"]
    ours = torch.load(resumed / "checkpoints" / "step-10" / "state.pt", weights_only=False)
    theirs = torch.load(reference / "checkpoints" / "step-10" / "state.pt", weights_only=False)
    assert ours["model"].keys() == theirs["model"].keys()
    for name, value in theirs["model"].items():
        assert torch.equal(ours["model"][name], value), name
    assert ours["tokens_seen"] == theirs["tokens_seen"]
    assert ours["scheduler"] == theirs["scheduler"]
    manifest = {name: json.loads((folder / "manifest.json").read_text()) for name, folder in
                (("ours", resumed), ("theirs", reference))}
    assert manifest["ours"]["tokens_seen"] == manifest["theirs"]["tokens_seen"] > 0
    assert manifest["ours"]["heldout_loss"] == manifest["theirs"]["heldout_loss"] != {}
    ours_log, theirs_log = read_log(resumed), read_log(reference)
    assert [r["step"] for r in ours_log] == list(range(1, 11))
    for mine, reference_record in zip(ours_log, theirs_log):
        for key in ("loss", "mlm_accuracy", "grad_norm", "tokens_seen", "heldout_loss"):
            assert mine.get(key) == reference_record.get(key), (mine["step"], key)
