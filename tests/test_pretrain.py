"""Pretraining stage: token store, instances, masking, masked-only head, loop, resume, outputs.

Inputs are made here from the data kit (see helpers_pretrain.py): a 3-language mixture folder
and a 3000-entry WordPiece vocabulary; the model is the `tiny` preset."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_pretrain import kit_documents, make_mixture, make_vocab, tiny_settings  # noqa: E402

from mbert.corpus.layout import find_corpus  # noqa: E402
from mbert.errors import UserError  # noqa: E402
from mbert.pretrain import instances as I  # noqa: E402
from mbert.pretrain.batching import Vocabulary, make_batch, mask_sequence  # noqa: E402
from mbert.pretrain.inputs import continuation_table, load_tokenizer  # noqa: E402
from mbert.pretrain.model import PretrainingModel, build_config, build_hf_model, run_batch  # noqa: E402
from mbert.pretrain.run_folder import is_complete  # noqa: E402
from mbert.pretrain.settings import PRESETS  # noqa: E402
from mbert.pretrain.token_store import TokenStore, build_token_store, iter_documents  # noqa: E402
from mbert.pretrain.train import NonFiniteLoss, pretrain  # noqa: E402


@pytest.fixture(scope="module")
def inputs(data_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pretrain_inputs")
    return make_mixture(data_dir, root / "mixture"), make_vocab(data_dir, root / "vocab")


@pytest.fixture(scope="module")
def finished_run(inputs, tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted 6-step run (checkpoints at 3 and 6), shared by several tests."""
    corpus, vocab = inputs
    out = tmp_path_factory.mktemp("run") / "pretrain"
    return out, pretrain(corpus, vocab, out, tiny_settings())


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().split("\n") if line]


# ----------------------------------------------------------------------------- data

def test_token_store_keeps_sentences_documents_and_languages(inputs, tmp_path):
    corpus, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    store = build_token_store(find_corpus(corpus).shards, tokenizer, tmp_path / "store", "fp", workers=1)
    table = pq.read_table(sorted(corpus.glob("part-*.parquet"))[0]).to_pylist()
    first = table[0]
    sentences = [s for s in first["text"].split("\n") if s.strip()]
    assert store.languages[store.doc_lang[0]] == first["lang"]
    assert store.doc_offsets[1] - store.doc_offsets[0] == len(sentences)
    for i, sentence in enumerate(sentences):
        lo, hi = store.sentence_offsets[i], store.sentence_offsets[i + 1]
        assert list(store.tokens[lo:hi]) == tokenizer(sentence, add_special_tokens=False)["input_ids"]
    assert store.info["n_documents"] == len(store.doc_lang) == 36
    assert set(store.info["tokens_per_language"]) == {"en", "de", "fr"}
    reopened = TokenStore.open(tmp_path / "store")
    assert np.array_equal(reopened.tokens, store.tokens)


def test_clean_layout_is_accepted(data_dir, inputs, tmp_path):
    _, vocab = inputs
    for lang in ("en", "de"):
        (tmp_path / "clean" / lang).mkdir(parents=True)
        docs = kit_documents(data_dir, lang, 5)
        pq.write_table(pa.table({"id": [str(i) for i in range(len(docs))], "title": ["t"] * len(docs),
                                 "text": docs}), tmp_path / "clean" / lang / "part-00000.parquet")
    shards = find_corpus(tmp_path / "clean").shards
    store = build_token_store(shards, load_tokenizer(vocab), tmp_path / "store", "fp", workers=1)
    assert sorted(store.languages) == ["de", "en"] and store.n_documents == 10


def test_instances_pack_sentences_within_documents(inputs, tmp_path):
    corpus, vocab = inputs
    store = build_token_store(find_corpus(corpus).shards, load_tokenizer(vocab), tmp_path / "s", "fp", workers=1)
    rng = np.random.default_rng(0)
    docs = np.arange(store.n_documents)
    plain = I.build_instances(store, docs, 64, 0.0, False, rng)
    assert (plain[:, I.A_LEN] + 2 <= 64).all() and (plain[:, I.B_LEN] == 0).all()
    # packing fills instances: most are at (or near) the maximum length
    assert np.median(plain[:, I.A_LEN]) >= 50
    doc_of_token = np.searchsorted(np.asarray(store.sentence_offsets)[np.asarray(store.doc_offsets)],
                                   plain[:, I.A_START], side="right") - 1
    doc_end = np.asarray(store.sentence_offsets)[np.asarray(store.doc_offsets)[doc_of_token + 1]]
    assert (plain[:, I.A_START] + plain[:, I.A_LEN] <= doc_end).all()  # never across documents
    share = I.padding_share(plain, 64, 2)
    assert share == pytest.approx(1 - (plain[:, I.A_LEN] + 2).sum() / (len(plain) * 64))
    nsp = I.build_instances(store, docs, 64, 0.1, True, np.random.default_rng(0))
    assert (nsp[:, I.A_LEN] + nsp[:, I.B_LEN] + 3 <= 64).all() and (nsp[:, I.B_LEN] > 0).all()
    assert 0.3 < nsp[:, I.RANDOM_NEXT].mean() < 0.8
    train, held = I.split_heldout(store, 1, np.random.default_rng(0))
    assert len(held) == 3 and len(set(store.doc_lang[held])) == 3
    assert not set(store.doc_key[held]) & set(store.doc_key[train])


def test_masking_statistics_80_10_10_and_whole_words(data_dir, inputs):
    _, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    table = continuation_table(tokenizer)
    voc = Vocabulary.from_tokenizer(tokenizer, table)
    rng = np.random.default_rng(1)
    seq = rng.choice(voc.replacement_ids, size=200_000)
    candidates = np.ones(len(seq), bool)
    masked, positions, labels = mask_sequence(seq, candidates, voc, 0.15, False, rng)
    assert len(positions) == 30_000 and (labels == seq[positions]).all()
    changed = masked[positions]
    share_mask = np.mean(changed == voc.mask)
    share_same = np.mean(changed == labels)
    assert abs(share_mask - 0.8) < 0.01
    # the random 10% may draw the original id by chance (1 / vocab), hence the small slack
    assert abs(share_same - 0.1) < 0.01 and abs(1 - share_mask - share_same - 0.1) < 0.01
    unchanged = np.ones(len(seq), bool)
    unchanged[positions] = False
    assert (masked[unchanged] == seq[unchanged]).all()
    # whole-word masking: a chosen continuation piece always comes with its word start
    ids = np.asarray(tokenizer(" ".join(kit_documents(data_dir, "de", 5)),
                               add_special_tokens=False)["input_ids"])
    _, chosen, _ = mask_sequence(ids, np.ones(len(ids), bool), voc, 0.15, True, np.random.default_rng(2))
    chosen_set = set(chosen.tolist())
    assert table[ids].any()  # the text has split words, so the check below means something
    for pos in chosen:
        if table[ids[pos]]:
            assert pos - 1 in chosen_set
    assert abs(len(chosen) - 0.15 * len(ids)) <= 6


def test_masks_are_dynamic_and_reproducible(inputs):
    _, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    voc = Vocabulary.from_tokenizer(tokenizer, continuation_table(tokenizer))
    tokens = np.arange(5, 105, dtype=np.int32)
    rows = np.array([[0, 60, 0, 0, 0, 0, 0]])
    common = dict(max_seq_length=64, mask_prob=0.15, whole_word=False, nsp=False,
                  restart_positions=False, language_types=False)
    epoch0 = make_batch(tokens, rows, [(0, 0, 0, 7)], voc, **common)
    again = make_batch(tokens, rows, [(0, 0, 0, 7)], voc, **common)
    epoch1 = make_batch(tokens, rows, [(0, 0, 1, 7)], voc, **common)
    assert torch.equal(epoch0.masked_positions, again.masked_positions)
    assert not torch.equal(epoch0.masked_positions, epoch1.masked_positions)
    assert epoch0.input_ids[0, 0] == tokenizer.cls_token_id and epoch0.input_ids[0, 61] == tokenizer.sep_token_id


def test_tlm_batch_restarts_positions_and_marks_languages(inputs):
    _, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    voc = Vocabulary.from_tokenizer(tokenizer, continuation_table(tokenizer))
    tokens = np.arange(5, 105, dtype=np.int32)
    rows = np.array([[0, 5, 10, 7, 0, 2, 0]])
    batch = make_batch(tokens, rows, [(0, 1, 0, 0)], voc, max_seq_length=64, mask_prob=0.15,
                       whole_word=False, nsp=False, restart_positions=True, language_types=True)
    assert batch.position_ids[0, :7].tolist() == list(range(7))      # [CLS] a(5) [SEP]
    assert batch.position_ids[0, 7:15].tolist() == list(range(8))    # b(7) [SEP] restarts at 0
    assert batch.token_type_ids[0, :7].tolist() == [2] * 7 and batch.token_type_ids[0, 7:15].tolist() == [0] * 8
    assert batch.attention_mask is not None and batch.attention_mask[0].sum() == 15
    assert set(batch.masked_positions.tolist()) <= set(range(1, 6)) | set(range(7, 14))


# ----------------------------------------------------------------------------- model

def hf_labels(batch) -> torch.Tensor:
    """Labels in HF `BertForMaskedLM` form: the original id at masked positions, -100 elsewhere."""
    labels = torch.full((batch.input_ids.numel(),), -100, dtype=torch.long)
    labels[batch.masked_positions] = batch.masked_labels
    return labels.view_as(batch.input_ids)


def test_masked_only_head_matches_hf_bert_for_masked_lm(inputs):
    from transformers import BertForMaskedLM

    _, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    voc = Vocabulary.from_tokenizer(tokenizer, continuation_table(tokenizer))
    config = build_config(PRESETS["tiny"], vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          max_seq_length=64)
    torch.manual_seed(0)
    ours = PretrainingModel(build_hf_model(config, nsp=False)).eval()
    reference = BertForMaskedLM(config).eval()
    reference.load_state_dict(ours.hf.state_dict())
    tokens = np.random.default_rng(0).choice(voc.replacement_ids, 400).astype(np.int32)
    rows = np.array([[0, 60, 0, 0, 0, 0, 0], [100, 30, 0, 0, 0, 0, 0], [200, 45, 0, 0, 0, 0, 0]])
    batch = make_batch(tokens, rows, [(0, 0, 0, i) for i in range(3)], voc, max_seq_length=64,
                       mask_prob=0.15, whole_word=False, nsp=False, restart_positions=False,
                       language_types=False)
    assert batch.attention_mask is not None  # padded rows are part of the check
    with torch.no_grad():
        out = run_batch(ours, batch)
        hf = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       token_type_ids=batch.token_type_ids, labels=hf_labels(batch))
    ours_loss = out.mlm_loss_sum / len(batch.masked_labels)
    assert float(ours_loss) == pytest.approx(float(hf.loss), rel=1e-5)
    hf_correct = (hf.logits.argmax(-1).view(-1)[batch.masked_positions] == batch.masked_labels).sum()
    assert int(out.mlm_correct) == int(hf_correct)


# ----------------------------------------------------------------------------- training

def test_run_writes_transformers_model_log_card_and_manifest(inputs, finished_run):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertModel, pipeline

    out, result = finished_run
    assert is_complete(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 6 and manifest["tokens_seen"] == result["tokens_seen"] > 0
    assert (out / "resolved_config.toml").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-3", "step-6"]
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(1, 7))
    for record in log:
        assert {"loss", "mlm_accuracy", "lr", "grad_norm", "tokens_per_s"} <= set(record)
    assert set(log[2]["heldout_loss"]) == {"en", "de", "fr"} == set(result["heldout_loss"])
    # warm-up over 2 steps reaches the peak at update 3, then decays
    assert [r["lr"] for r in log[:3]] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3]) and 0 < log[-1]["lr"] < 1e-3
    assert 0.0 <= result["padding_share"] < 0.5
    model_dir = out / "model"
    mlm = AutoModelForMaskedLM.from_pretrained(model_dir)
    assert mlm.config.num_hidden_layers == 2 and mlm.config.hidden_size == 64
    assert mlm.get_output_embeddings().weight.data_ptr() == mlm.get_input_embeddings().weight.data_ptr()
    BertModel.from_pretrained(model_dir)
    fill = pipeline("fill-mask", model=str(model_dir), tokenizer=str(model_dir), device="cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    predictions = fill(f"The cat is {tokenizer.mask_token} the house.")
    assert len(predictions) == 5 and all("token_str" in p for p in predictions)
    card = (model_dir / "README.md").read_text()
    assert "2 layers, hidden 64" in card and "tokens seen" in card
    q_de = json.loads((inputs[0] / "manifest.json").read_text())["languages"]["de"]["q"]
    assert "S = 0.7" in card and f"| de | {q_de:.4f} |" in card


class InterruptAt:
    """A tracker that stops the run (like Ctrl-C) when step `step` is logged."""

    def __init__(self, step: int) -> None:
        self.step = step

    def log(self, metrics: dict, step: int | None = None) -> None:
        assert metrics["pretrain/step"] >= 1 and "pretrain/loss" in metrics
        if metrics["pretrain/step"] == self.step:
            raise KeyboardInterrupt

    def summary(self, metrics: dict) -> None:
        pass


def test_resume_continues_exactly_like_an_uninterrupted_run(inputs, finished_run, tmp_path):
    corpus, vocab = inputs
    reference = read_log(finished_run[0])
    out = tmp_path / "pretrain"
    with pytest.raises(KeyboardInterrupt):
        pretrain(corpus, vocab, out, tiny_settings(), tracker=InterruptAt(5))
    assert not is_complete(out) and (out / "checkpoints" / "step-3").is_dir()
    with pytest.raises(UserError, match="--resume"):
        pretrain(corpus, vocab, out, tiny_settings(), resume=False)
    pretrain(corpus, vocab, out, tiny_settings(), resume=True)
    resumed = read_log(out)
    assert [r["step"] for r in resumed] == list(range(1, 7))
    for ref, got in zip(reference, resumed):
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-6), got["step"]
        assert got["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-5)


def test_interrupted_run_resumes_after_a_runtime_change_and_stops_on_an_output_change(
        inputs, finished_run, tmp_path):
    """`mbert run` (resume=None) never deletes checkpoints: same output settings resume, others stop."""
    corpus, vocab = inputs
    reference = {r["step"]: r for r in read_log(finished_run[0])}
    out = tmp_path / "pretrain"
    with pytest.raises(KeyboardInterrupt):
        pretrain(corpus, vocab, out, tiny_settings(), tracker=InterruptAt(5))
    log = (out / "train_log.jsonl").read_text()
    with pytest.raises(UserError, match=r"unfinished pretraining .*\(learning_rate = 0.001 there, 0.0005 here\)"):
        pretrain(corpus, vocab, out, tiny_settings(learning_rate=5e-4))
    assert (out / "checkpoints" / "step-3").is_dir() and (out / "train_log.jsonl").read_text() == log
    # only runtime settings differ (logging, evaluation and checkpoint intervals): it resumes at step 3
    pretrain(corpus, vocab, out, tiny_settings(log_every=2, eval_every=2, checkpoint_every=2))
    resumed = read_log(out)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 6] and is_complete(out)
    for record in resumed:
        assert record["loss"] == pytest.approx(reference[record["step"]]["loss"], rel=1e-6), record["step"]
    # a finished run with the same output settings is kept as it is
    again = pretrain(corpus, vocab, out, tiny_settings(log_every=3))
    assert read_log(out) == resumed and again["steps"] == 6


def test_resume_refuses_checkpoint_of_another_model(data_dir, inputs, finished_run, tmp_path):
    corpus, vocab = inputs
    out = tmp_path / "copy"
    shutil.copytree(finished_run[0], out)
    (out / "manifest.json").unlink()
    with pytest.raises(UserError, match="another model"):
        pretrain(corpus, vocab, out, tiny_settings(model="small", steps=8), resume=True)
    other_vocab = make_vocab(data_dir, tmp_path / "other_vocab", vocab_size=2500)
    with pytest.raises(UserError, match="another model.*vocab"):
        pretrain(corpus, other_vocab, out, tiny_settings(steps=8), resume=True)


def test_non_finite_loss_stops_with_message_and_keeps_checkpoint(inputs, tmp_path):
    corpus, vocab = inputs
    out = tmp_path / "nan"
    settings = tiny_settings(learning_rate=1e30, warmup_steps=0, checkpoint_every=1, steps=6,
                             max_grad_norm=0.0, eval_every=100)
    with pytest.raises(NonFiniteLoss, match="non-finite at step") as caught:
        pretrain(corpus, vocab, out, settings)
    assert "last good checkpoint" in str(caught.value)
    assert not is_complete(out) and not (out / "model").exists()
    good = sorted((out / "checkpoints").iterdir())
    assert good and all((p / "meta.json").is_file() for p in good)
    for path in good:  # what is kept really is good: finite weights
        state = torch.load(path / "state.pt", weights_only=True)
        assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert not list((out / "checkpoints").glob(".*"))  # no half-written checkpoint left


def test_bad_inputs_give_one_clear_error(data_dir, inputs, tmp_path, monkeypatch):
    corpus, vocab = inputs
    with pytest.raises(UserError, match="does not exist"):
        pretrain(tmp_path / "missing", vocab, tmp_path / "o1", tiny_settings())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no Parquet shards"):
        pretrain(tmp_path / "empty", vocab, tmp_path / "o2", tiny_settings())
    with pytest.raises(UserError, match="AutoTokenizer"):
        pretrain(corpus, tmp_path / "empty", tmp_path / "o3", tiny_settings())
    # a vocabulary trained on Latin-script text does not cover Chinese
    zh = make_mixture(data_dir, tmp_path / "zh", langs=("zh",), max_docs=4, shards=1)
    with pytest.raises(UserError, match="vocabulary does not match"):
        pretrain(zh, vocab, tmp_path / "o4", tiny_settings())
    assert not is_complete(tmp_path / "o4")
    with monkeypatch.context() as patch:  # torch.compile on the CPU without a C++ compiler
        patch.setattr(shutil, "which", lambda name: None)
        with pytest.raises(UserError, match="needs a C\\+\\+ compiler"):
            pretrain(corpus, vocab, tmp_path / "o6", tiny_settings(compile=True))
    assert not (tmp_path / "o6").exists()  # refused before any work
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no GPU is visible"):
            pretrain(corpus, vocab, tmp_path / "o5", tiny_settings(device="cuda"))
        assert not (tmp_path / "o5").exists()


def test_cli_pretrain_and_errors(inputs, tmp_path, capsys):
    from mbert.cli import main

    corpus, vocab = inputs
    out = tmp_path / "cli"
    code = main(["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--out", str(out),
                 "--model", "tiny", "--steps", "2", "--batch-size", "4", "--seq-len", "32",
                 "--whole-word-masking", "--wandb", "off", "--set", "pretrain.tokenize_workers=1",
                 "--set", "pretrain.device='cpu'"])
    assert code == 0 and is_complete(out)
    assert "Pretrained a tiny BERT for 2 steps" in capsys.readouterr().out
    code = main(["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--out", str(out)])
    assert code == 1 and "--resume" in capsys.readouterr().err
    code = main(["pretrain", "--corpus", str(tmp_path / "nope"), "--vocab", str(vocab), "--out",
                 str(tmp_path / "x"), "--wandb", "off"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "does not exist" in err


def test_two_gloo_processes_match_one_process(inputs, tmp_path):
    """`torchrun --nproc-per-node 2 -m mbert pretrain` on CPU (gloo) against one process."""
    import os
    import subprocess

    corpus, vocab = inputs
    # dropout off: its random draws are per process by design; everything else must agree
    overrides = dict(steps=3, dropout=0.0, eval_every=3, checkpoint_every=3, grad_accum=2)
    single = tmp_path / "single"
    pretrain(corpus, vocab, single, tiny_settings(**overrides))
    double = tmp_path / "double"
    settings = tiny_settings(**overrides)
    sets = [f"pretrain.{k}={json.dumps(getattr(settings, k))}" for k in (
        "dropout", "eval_every", "checkpoint_every", "grad_accum", "log_every", "warmup_steps",
        "heldout_docs", "heldout_instances", "tokenize_workers", "device")]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "mbert", "pretrain", "--corpus", str(corpus), "--vocab", str(vocab),
               "--out", str(double), "--model", "tiny", "--steps", "3", "--batch-size", "8",
               "--seq-len", "64", "--lr", "1e-3", "--wandb", "off", "--quiet"]
    for item in sets:
        command += ["--set", item]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert is_complete(double)
    assert done.stdout.count("Pretrained a tiny BERT") == 1  # only rank 0 reports and writes
    one, two = read_log(single), read_log(double)
    assert [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
        assert b["tokens_seen"] == a["tokens_seen"]
    assert "world_size = 2" in (double / "resolved_config.toml").read_text()
    assert one[-1]["heldout_loss"] == pytest.approx(two[-1]["heldout_loss"], rel=1e-5)


def test_nsp_run_reports_nsp_and_saves_pretraining_heads(inputs, tmp_path):
    from transformers import AutoModelForMaskedLM, BertForPreTraining

    corpus, vocab = inputs
    out = tmp_path / "nsp"
    pretrain(corpus, vocab, out, tiny_settings(nsp=True, steps=2, eval_every=2))
    log = read_log(out)
    assert all("nsp_loss" in r and 0 <= r["nsp_accuracy"] <= 1 for r in log)
    assert BertForPreTraining.from_pretrained(out / "model").config.architectures == ["BertForPreTraining"]
    AutoModelForMaskedLM.from_pretrained(out / "model")


def test_tlm_mix_with_language_embeddings(data_dir, inputs, tmp_path):
    from transformers import AutoModelForMaskedLM

    corpus, vocab = inputs
    tatoeba = data_dir / "tatoeba"
    pair = {"src": tatoeba / "tatoeba.deu-eng.deu", "tgt": tatoeba / "tatoeba.deu-eng.eng",
            "src_lang": "de", "tgt_lang": "en"}
    from mbert.config import build
    from mbert.pretrain.settings import PretrainSettings, TlmPair

    settings = tiny_settings(tlm=[build(TlmPair, pair)], tlm_ratio=0.5, language_embeddings=True,
                             steps=4, eval_every=4)
    out = tmp_path / "tlm"
    result = pretrain(corpus, vocab, out, settings)
    objectives = {r["objective"] for r in read_log(out)}
    assert objectives == {"mlm", "tlm"} and result["instances"]["tlm"] == 1000
    model = AutoModelForMaskedLM.from_pretrained(out / "model")
    assert model.config.type_vocab_size == 3 == len(model.config.pretraining_languages)
    assert "TLM on de-en" in (out / "model" / "README.md").read_text()
    with pytest.raises(Exception, match="nsp"):
        build(PretrainSettings, {"language_embeddings": True, "nsp": True})


def test_compiled_and_bf16_runs_match_the_fp32_eager_run(inputs, tmp_path):
    """The GPU code paths, run on the CPU: `torch.compile` (compiled once for any number of
    masked targets, not once per count) and bf16 autocast. Without dropout, compiling changes
    nothing; bf16 stays within its precision."""
    from torch._dynamo.utils import counters

    corpus, vocab = inputs
    runs = {}
    for name, extra in (("eager", {}), ("compiled", {"compile": True}), ("bf16", {"precision": "bf16"})):
        counters.clear()
        pretrain(corpus, vocab, tmp_path / name, tiny_settings(steps=8, dropout=0.0, **extra))
        runs[name] = read_log(tmp_path / name)
        if name == "compiled":
            # one graph for any number of targets, one more for padded batches (attention mask)
            assert 1 <= counters["stats"]["unique_graphs"] <= 2
    for eager, compiled, bf16 in zip(runs["eager"], runs["compiled"], runs["bf16"]):
        assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-4)
        assert compiled["grad_norm"] == pytest.approx(eager["grad_norm"], rel=1e-3)
        assert bf16["loss"] == pytest.approx(eager["loss"], rel=2e-3)
    assert runs["eager"][-1]["loss"] < runs["eager"][0]["loss"]
    from transformers import AutoModelForMaskedLM
    AutoModelForMaskedLM.from_pretrained(tmp_path / "compiled" / "model")  # no compile-wrapper keys


def test_parallel_tokenization_gives_the_same_store(inputs, tmp_path):
    corpus, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    one = build_token_store(find_corpus(corpus).shards, tokenizer, tmp_path / "one", "fp", workers=1)
    two = build_token_store(find_corpus(corpus).shards, tokenizer, tmp_path / "two", "fp", workers=2)
    for name in ("tokens", "sentence_offsets", "doc_offsets", "doc_lang", "doc_key"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert one.info == two.info


def test_tokenizing_a_batch_in_slices_gives_the_same_store(inputs, tmp_path, monkeypatch):
    """The tokenizer sees a bounded number of sentences per call, and a batch a bounded amount of
    text (flat memory for long documents); slices that cut documents and batches anywhere give the
    same store, with one worker or two."""
    from mbert.pretrain import token_store

    corpus, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    shards = find_corpus(corpus).shards
    whole = build_token_store(shards, tokenizer, tmp_path / "whole", "fp", workers=1)
    assert len(whole.doc_offsets) > 10 and len(whole.sentence_offsets) > 7 * 10  # many slices, cut anywhere
    documents = [r for s in shards for rows in token_store.iter_documents(s) for r in rows]
    limit = max(len(r[2]) for r in documents) - 1  # the longest document alone, the others packed
    monkeypatch.setattr(token_store, "SENTENCES_PER_CALL", 7)
    monkeypatch.setattr(token_store, "BATCH_CHARACTERS", limit)
    batches = list(token_store._batches(shards))
    assert len(shards) < len(batches) < len(documents)
    assert all(len(b) == 1 or sum(len(r[2]) for r in b) <= limit for b in batches)
    assert any(len(b) == 1 and len(b[0][2]) > limit for b in batches)  # a longer document is never cut
    assert [r for b in batches for r in b] == documents  # every document once, in order
    for workers in (1, 2):
        sliced = build_token_store(shards, tokenizer, tmp_path / f"sliced{workers}", "fp", workers=workers)
        for name in ("tokens", "sentence_offsets", "doc_offsets", "doc_lang", "doc_key"):
            assert np.array_equal(getattr(whole, name), getattr(sliced, name)), name
        assert whole.info == sliced.info


def test_token_ids_are_the_transformers_calls_even_with_truncation_saved_on(inputs):
    """The store calls a copy of the tokenizer's Rust backend directly: the same ids as the
    transformers call, also for a tokenizer whose file has truncation and padding switched on (they
    would cut and pad every sentence), and the caller's tokenizer is left as it was."""
    from mbert.pretrain.token_store import Encoder

    corpus, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    sentences = [line for shard in find_corpus(corpus).shards for rows in iter_documents(shard)
                 for _, _, text in rows for line in text.split("\n") if line.strip()][:200]
    expected = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    assert max(map(len, expected)) > 8 and min(map(len, expected)) < 8
    assert Encoder(tokenizer).ids(sentences) == expected
    tokenizer.backend_tokenizer.enable_truncation(max_length=8)
    tokenizer.backend_tokenizer.enable_padding(length=8)
    assert Encoder(tokenizer).ids(sentences) == expected
    assert tokenizer.backend_tokenizer.truncation["max_length"] == 8  # the caller's tokenizer untouched


def test_a_worker_tokenizes_without_importing_transformers(inputs, tmp_path):
    """Workers receive the Rust backend, not the transformers tokenizer: each would otherwise spend
    ~3 CPU-seconds importing transformers before tokenising anything."""
    import pickle
    import subprocess

    from mbert.pretrain.token_store import Encoder

    corpus, vocab = inputs
    tokenizer = load_tokenizer(vocab)
    sentences = ["Der Hund schläft.", "The dog sleeps in the garden."]
    (tmp_path / "encoder.pkl").write_bytes(pickle.dumps(Encoder(tokenizer)))
    script = ("import pickle, sys; encoder = pickle.load(open(sys.argv[1], 'rb')); "
              "print(encoder.ids(sys.argv[2:]), encoder.unk_id, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "encoder.pkl"), *sentences],
                          capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    expected = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    assert done.stdout.split() == f"{expected} {tokenizer.unk_token_id} False".split()


def test_bench_pretrain_json(capsys):
    from mbert.cli import main

    code = main(["bench", "pretrain", "--model", "tiny", "--vocab-size", "8000", "--seq-len", "32",
                 "--batch-size", "4", "--steps", "1", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["device"] == "cpu"
    assert result["ours_tokens_per_s"] > 0 and result["hf_tokens_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["ours_tokens_per_s"] / result["hf_tokens_per_s"])
    assert result["ours_cpu_s"] > 0 and result["hf_cpu_s"] > 0 and result["mfu"] is None
    assert result["input_tokens_per_s"] > result["ours_tokens_per_s"]  # masking keeps up on CPU


def test_rerun_finishes_a_run_stopped_after_its_last_checkpoint(inputs, finished_run, tmp_path):
    corpus, vocab = inputs
    out = tmp_path / "copy"
    shutil.copytree(finished_run[0], out)
    (out / "manifest.json").unlink()   # as if stopped while writing the output
    shutil.rmtree(out / "model")
    before = (out / "train_log.jsonl").read_text()
    result = pretrain(corpus, vocab, out, tiny_settings())  # resume=None, as `mbert run` calls it
    assert is_complete(out) and (out / "model" / "config.json").is_file()
    assert (out / "train_log.jsonl").read_text() == before  # nothing was trained again
    assert result["final_loss"] == pytest.approx(finished_run[1]["final_loss"])
    # other output settings: the finished run is kept and the differences named, until asked to replace
    shared = finished_run[0] / "data" / "store"
    stamp = (shared / "store.json").stat().st_mtime_ns
    other = tiny_settings(steps=2, learning_rate=5e-4, token_store=shared)
    with pytest.raises(UserError, match=r"learning_rate = 0.001 there, 0.0005 here; steps = 6 there, 2 here.*--force"):
        pretrain(corpus, vocab, out, other)
    assert is_complete(out) and (out / "train_log.jsonl").read_text() == before
    pretrain(corpus, vocab, out, other, replace=True)
    assert [r["step"] for r in read_log(out)] == [1, 2]
    assert (shared / "store.json").stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_fsdp_under_torchrun_matches_one_process_and_resumes(inputs, tmp_path):
    """FSDP2 on CPU (gloo): same losses as one process, gathered checkpoints, loadable model."""
    import os
    import subprocess

    from transformers import AutoModelForMaskedLM

    corpus, vocab = inputs
    overrides = dict(steps=4, dropout=0.0, eval_every=2, checkpoint_every=2)
    single = tmp_path / "single"
    pretrain(corpus, vocab, single, tiny_settings(**overrides))
    sharded = tmp_path / "fsdp"

    def torchrun(steps: int, *extra: str) -> None:
        settings = tiny_settings(**overrides)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   "-m", "mbert", "pretrain", "--corpus", str(corpus), "--vocab", str(vocab),
                   "--out", str(sharded), "--model", "tiny", "--steps", str(steps), "--batch-size", "8",
                   "--seq-len", "64", "--lr", "1e-3", "--wandb", "off", "--quiet", *extra,
                   "--set", "pretrain.fsdp=true"]
        for key in ("dropout", "eval_every", "checkpoint_every", "log_every", "warmup_steps",
                    "heldout_docs", "heldout_instances", "tokenize_workers", "device"):
            command += ["--set", f"pretrain.{key}={json.dumps(getattr(settings, key))}"]
        done = subprocess.run(command, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    torchrun(4)
    one, two = read_log(single), read_log(sharded)
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    state = torch.load(sharded / "checkpoints" / "step-4" / "state.pt", weights_only=True)
    reference = torch.load(single / "checkpoints" / "step-4" / "state.pt", weights_only=True)
    for key, value in reference["model"].items():  # gathered, full-size weights
        assert torch.allclose(state["model"][key], value, atol=1e-5), key
    model = AutoModelForMaskedLM.from_pretrained(sharded / "model")
    assert torch.allclose(model.bert.embeddings.word_embeddings.weight,
                          reference["model"]["hf.bert.embeddings.word_embeddings.weight"], atol=1e-5)
    # train on to step 6 from the step-4 checkpoints: sharded restore = unsharded restore
    pretrain(corpus, vocab, single, tiny_settings(**{**overrides, "steps": 6}), resume=True)
    torchrun(6, "--resume")
    one, two = read_log(single), read_log(sharded)
    assert [r["step"] for r in two] == [1, 2, 3, 4, 5, 6] and is_complete(sharded)
    for a, b in zip(one[4:], two[4:]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


def test_sentencepiece_vocabulary_with_whole_word_masking(data_dir, inputs, tmp_path):
    from helpers_pretrain import make_sentencepiece_vocab
    from transformers import pipeline

    corpus, _ = inputs
    vocab = make_sentencepiece_vocab(data_dir, tmp_path / "sp")
    tokenizer = load_tokenizer(vocab)
    table = continuation_table(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("Hello wonderful world")["input_ids"])
    ids = tokenizer.convert_tokens_to_ids(pieces)
    # a piece starting with ▁ begins a word, every other piece continues one
    assert [bool(table[i]) for i in ids] == [not p.startswith("▁") for p in pieces]
    out = tmp_path / "out"
    pretrain(corpus, vocab, out, tiny_settings(steps=2, whole_word_masking=True, eval_every=2))
    fill = pipeline("fill-mask", model=str(out / "model"), device="cpu")
    assert len(fill(f"Hello {tokenizer.mask_token} world")) == 5


# ----------------------------------------------------------------------------- resuming safely

def _stopped_at_step_3(finished_run, out: Path) -> Path:
    """A copy of the finished run as if it had stopped after its checkpoint at step 3."""
    shutil.copytree(finished_run[0], out)
    (out / "manifest.json").unlink()
    shutil.rmtree(out / "checkpoints" / "step-6")
    return out


class _RunsCode:
    """Unpickling this creates `marker`: what a planted checkpoint could do with any command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return os.mkdir, (str(self.marker),)


def test_planted_checkpoint_is_refused_and_never_unpickled(inputs, finished_run, tmp_path):
    corpus, vocab = inputs
    out = _stopped_at_step_3(finished_run, tmp_path / "copy")
    marker = tmp_path / "code-ran"
    torch.save({"model": _RunsCode(marker)}, out / "checkpoints" / "step-3" / "state.pt")
    with pytest.raises(UserError, match="holds Python objects besides tensors .* was not loaded"):
        pretrain(corpus, vocab, out, tiny_settings(), resume=True)
    assert not marker.exists()


def test_resume_applies_a_changed_learning_rate_and_refuses_a_changed_seed(inputs, finished_run, tmp_path, capsys):
    corpus, vocab = inputs
    out = _stopped_at_step_3(finished_run, tmp_path / "copy")
    with pytest.raises(UserError, match=r"cannot resume .*step-3 with other settings \(seed: checkpoint 0 vs now 1\)"):
        pretrain(corpus, vocab, out, tiny_settings(seed=1), resume=True)
    capsys.readouterr()
    pretrain(corpus, vocab, out, tiny_settings(learning_rate=2e-4), resume=True)
    assert "learning_rate 0.001 -> 0.0002" in capsys.readouterr().err
    log = read_log(out)
    reference = read_log(finished_run[0])
    assert [r["lr"] for r in log[:3]] == [r["lr"] for r in reference[:3]]
    # the linear decay from step 4 on (warm-up 2 of 6 steps), on the new peak rate
    assert [r["lr"] for r in log[3:]] == pytest.approx([2e-4 * (6 - s) / 4 for s in (3, 4, 5)])
    assert json.loads((out / "checkpoints" / "step-6" / "meta.json").read_text())["settings"]["learning_rate"] == 2e-4


def test_interrupted_checkpoint_writes_are_removed(tmp_path):
    from mbert.pretrain.checkpoint import checkpoint_dirs, save_checkpoint

    root = tmp_path / "checkpoints"
    for leftover in (".step-4.x1y2.partial", ".step-2.old"):  # a kill inside a write leaves these
        (root / leftover).mkdir(parents=True)
        (root / leftover / "state.pt").write_bytes(b"half")
    save_checkpoint(root, 5, {"step": torch.tensor(5)}, {}, keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["step-5"] and checkpoint_dirs(root)[0][0] == 5


def test_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    from mbert.diskspace import DiskFull
    from mbert.pretrain.checkpoint import checkpoint_dirs, save_checkpoint

    root = tmp_path / "checkpoints"
    state = {"model": {"w": torch.zeros(1000)}, "step": 1}  # 4,000 bytes of tensors
    save_checkpoint(root, 1, state, {}, keep=2)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 4096))
    with pytest.raises(DiskFull, match=rf"not enough disk space in {root} for checkpoint step-2: it needs "
                                       r"about 1\.1 MB and 4\.1 KB is free"):
        save_checkpoint(root, 2, state, {}, keep=2)
    # torch reports a write cut short by a full disk as "unexpected pos": the same line
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(1 << 30, 0, 1 << 30))

    def short_write(obj, path):
        monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 4096))
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 731712 vs 731664")
    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(DiskFull, match="for checkpoint step-2"):
        save_checkpoint(root, 2, state, {}, keep=2)
    assert [step for step, _ in checkpoint_dirs(root)] == [1] and sorted(p.name for p in root.iterdir()) == ["step-1"]


def test_full_disk_while_tokenizing_is_one_line(inputs, tmp_path, monkeypatch, capsys):
    import errno

    from mbert.cli import main
    from mbert.pretrain import inputs as inputs_module

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(inputs_module, "build_token_store", full_disk)
    corpus, vocab = inputs
    out = tmp_path / "out"
    code = main(["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--out", str(out), "--model", "tiny",
                 "--steps", "2", "--device", "cpu", "--wandb", "off"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"mbert: error: not enough disk space in {out / 'data' / 'store'} for "
                                        f"the token store: it needs about ") and "\n" not in err
