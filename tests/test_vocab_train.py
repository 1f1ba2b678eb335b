"""Vocabulary training on real kit text: tokenizer folders, fast = slow, SentencePiece, bad input."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mbert.cli import main
from mbert.errors import UserError
from mbert.vocab.settings import VocabSettings
from mbert.vocab.train import is_complete, train_vocab

LANGS = ["en", "de", "ru", "ar", "hi", "zh", "ja"]
LINES_PER_LANG = 300
SPECIALS = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
SMALL = dict(size=2000, limit_alphabet=700)  # zh/ja bring ~2,000 characters: keep the 700 most frequent


def kit_documents(data_dir: Path, lang: str, max_lines: int = LINES_PER_LANG) -> list[str]:
    """Documents of the kit corpus (blank line between documents), cut to `max_lines` sentences."""
    text = (data_dir / "corpus" / f"{lang}.txt").read_text(encoding="utf-8")
    docs, kept = [], 0
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line.strip()][:max_lines - kept]
        if lines:
            docs.append("\n".join(lines))
            kept += len(lines)
        if kept >= max_lines:
            break
    return docs


def write_clean(root: Path, docs: dict[str, list[str]]) -> Path:
    for lang, texts in docs.items():
        (root / lang).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": [f"{lang}-{i}" for i in range(len(texts))], "title": ["t"] * len(texts),
                                 "text": texts}), root / lang / "part-00000.parquet")
    return root


def write_mixture(root: Path, docs: dict[str, list[str]], shards: int = 2) -> Path:
    rows = [(lang, f"{lang}-{i}", text) for lang, texts in docs.items() for i, text in enumerate(texts)]
    random.Random(0).shuffle(rows)
    root.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        part = rows[shard::shards]
        pq.write_table(pa.table({"lang": [r[0] for r in part], "id": [r[1] for r in part],
                                 "title": ["t"] * len(part), "text": [r[2] for r in part]}),
                       root / f"part-{shard:05d}.parquet")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, data_dir) -> dict[str, Path]:
    docs = {lang: kit_documents(data_dir, lang) for lang in LANGS}
    root = tmp_path_factory.mktemp("corpus")
    return {"mixture": write_mixture(root / "mixture", docs), "clean": write_clean(root / "clean", docs)}


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("vocab") / "wordpiece"
    train_vocab(corpus["mixture"], out, VocabSettings(**SMALL))
    return out


def kit_sentences(data_dir: Path, per_file: int) -> dict[str, list[str]]:
    """Every Tatoeba file (both sides) and every PUD treebank's `# text` lines, `per_file` each."""
    texts = {}
    for path in sorted((data_dir / "tatoeba").glob("tatoeba.*-eng.*")):
        lines = path.read_text(encoding="utf-8").split("\n")
        texts[path.name] = [line for line in lines if line.strip()][:per_file]
    for path in sorted((data_dir / "ud" / "pud").glob("*.conllu")):
        lines = path.read_text(encoding="utf-8").split("\n")
        texts[path.name] = [line[len("# text = "):] for line in lines if line.startswith("# text = ")][:per_file]
    return texts


def slow_tokenizer(folder: Path):
    try:  # transformers 5: the pure-Python BERT tokenizer
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Slow
    except ImportError:  # transformers 4: BertTokenizer is the slow one
        from transformers import BertTokenizer as Slow
    return Slow.from_pretrained(str(folder))


def assert_fast_equals_slow(folder: Path, texts: dict[str, list[str]]) -> int:
    from transformers import AutoTokenizer

    fast, slow = AutoTokenizer.from_pretrained(str(folder)), slow_tokenizer(folder)
    assert fast.is_fast and not getattr(slow, "is_fast", False)
    compared = 0
    for name, lines in texts.items():
        assert lines, name
        for line in lines:
            assert fast.tokenize(line) == slow.tokenize(line), f"{name}: {line!r}"
            compared += 1
        assert fast(lines[0])["input_ids"] == slow(lines[0])["input_ids"], name
    return compared


def test_wordpiece_folder_loads_fast_and_slow(wordpiece, corpus):
    from transformers import AutoTokenizer

    manifest = json.loads((wordpiece / "manifest.json").read_text())
    assert manifest["complete"] and is_complete(wordpiece)
    assert manifest["kind"] == "wordpiece" and manifest["corpus_layout"] == "mixture"
    assert manifest["vocab_size"] == 2000 and manifest["special_tokens"] == SPECIALS
    assert manifest["chars_read"] > 100_000 and manifest["lines_read"] == LINES_PER_LANG * len(LANGS)
    assert (wordpiece / "resolved_config.toml").read_text().count("size = 2000") == 1
    vocab = (wordpiece / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(vocab) == 2000 and vocab[:5] == list(SPECIALS)
    assert len(set(vocab)) == len(vocab)

    tok = AutoTokenizer.from_pretrained(str(wordpiece))
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    enc = tok("Das Haus ist groß [MASK] 北京大学。", "Второе предложение")
    tokens = enc.tokens()
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and "[MASK]" in tokens
    assert {"北", "京", "大", "学"} <= set(tokens)  # every CJK ideograph is its own word
    assert "Das" in tokens  # cased: no lower-casing
    assert set(enc["token_type_ids"]) == {0, 1}
    words = enc.word_ids()
    assert words[0] is None and max(w for w in words if w is not None) >= 4


def test_wordpiece_is_deterministic_and_as_good_as_wordpiece_trainer(data_dir):
    """Same corpus, same vocabulary, byte for byte (HF's WordPieceTrainer differs run to run); and
    its held-out tokenisation is as compact as that of a WordPieceTrainer vocabulary."""
    from tokenizers import trainers

    from mbert.vocab.special import SPECIAL_TOKENS
    from mbert.vocab.wordpiece import new_wordpiece_tokenizer, train_wordpiece, vocab_lines

    langs = ["en", "de", "ru", "hi", "zh"]
    lines = [line for lang in langs for doc in kit_documents(data_dir, lang, 1000) for line in doc.split("\n")]
    options = dict(size=4000, uncased=False, min_frequency=2, show_progress=False)
    first, second = (vocab_lines(train_wordpiece([lines], **options)) for _ in range(2))
    assert first == second and len(first) == 4000 and first[:5] == list(SPECIAL_TOKENS)

    reference = new_wordpiece_tokenizer(uncased=False)
    reference.train_from_iterator([lines], trainer=trainers.WordPieceTrainer(
        vocab_size=4000, min_frequency=2, special_tokens=list(SPECIAL_TOKENS), show_progress=False))
    ours = train_wordpiece([lines], **options)
    held_out = [line for path in sorted((data_dir / "tatoeba").glob("tatoeba.*-eng.*"))
                if path.suffix[1:] in ("eng", "deu", "rus", "hin", "cmn")
                for line in path.read_text(encoding="utf-8").split("\n")[:300] if line.strip()]
    assert len(held_out) > 1000

    def pieces(tokenizer) -> tuple[int, int]:
        encodings = tokenizer.encode_batch(held_out, add_special_tokens=False)
        return sum(len(e.ids) for e in encodings), sum(e.ids.count(1) for e in encodings)

    (our_pieces, our_unknown), (their_pieces, their_unknown) = pieces(ours), pieces(reference)
    assert our_pieces <= 1.02 * their_pieces and our_unknown <= their_unknown + 5


def test_a_limited_alphabet_keeps_the_most_frequent_characters_and_is_deterministic(tmp_path, corpus):
    """`vocab.limit_alphabet`: the N most frequent characters are kept, ties at the cut broken by
    code point, the same every run (HF's own cut breaks them in hash order: 4 runs on this corpus gave 4
    vocabularies); a character left out is not in the vocabulary and tokenises to [UNK]."""
    from collections import Counter

    from transformers import AutoTokenizer

    from mbert.corpus.layout import find_corpus
    from mbert.vocab.shards import iter_line_batches
    from mbert.vocab.wordpiece import frequent_characters

    counts = Counter()
    for _, lines in iter_line_batches(find_corpus(corpus["mixture"])):
        counts.update("".join(lines).replace(" ", ""))
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    limit = SMALL["limit_alphabet"]
    assert counts[ranked[limit - 1]] == counts[ranked[limit]]  # a tie at the cut: what made runs differ
    kept = set(ranked[:limit])
    batches = (lines for _, lines in iter_line_batches(find_corpus(corpus["mixture"])))
    assert set(frequent_characters(batches, limit, uncased=False)) == kept

    vocabs = []
    for run in range(3):
        train_vocab(corpus["mixture"], tmp_path / str(run), VocabSettings(**SMALL))
        vocabs.append((tmp_path / str(run) / "vocab.txt").read_bytes())
    assert vocabs[0] == vocabs[1] == vocabs[2]
    entries = vocabs[0].decode("utf-8").split("\n")[:-1]
    singles = {e for e in entries if len(e) == 1} - set(SPECIALS)
    assert singles == kept
    dropped = ranked[limit]
    assert AutoTokenizer.from_pretrained(str(tmp_path / "0")).tokenize(dropped) == ["[UNK]"]


def test_fast_and_slow_identical_on_tatoeba_and_pud(wordpiece, data_dir):
    texts = kit_sentences(data_dir, per_file=150)
    assert len(texts) == 36 * 2 + 11  # 36 Tatoeba pairs (incl. en sides) and 11 PUD treebanks
    assert assert_fast_equals_slow(wordpiece, texts) > 11000


def test_uncased_from_clean_folder_fast_equals_slow(tmp_path, corpus, data_dir):
    out = tmp_path / "uncased"
    manifest = train_vocab(corpus["clean"], out, VocabSettings(uncased=True, **SMALL))
    assert manifest["corpus_layout"] == "clean" and manifest["uncased"]
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(out)).tokenize("Ärger") == slow_tokenizer(out).tokenize("Ärger")
    assert all(t == t.lower() for t in AutoTokenizer.from_pretrained(str(out)).tokenize("Ärger ÉCOLE"))
    # Hindi vowel signs are spacing marks (Mc): BERT keeps them when stripping accents
    assert_fast_equals_slow(out, {k: v[:25] for k, v in kit_sentences(data_dir, per_file=25).items()})


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_is_used_like_wordpiece(tmp_path, corpus, data_dir, model_type):
    import sentencepiece as spm
    from transformers import AutoTokenizer

    out = tmp_path / model_type
    manifest = train_vocab(corpus["mixture"], out, VocabSettings(kind="sentencepiece", sp_model_type=model_type,
                                                                 size=3000, character_coverage=0.995))
    assert manifest["kind"] == "sentencepiece" and 2000 < manifest["vocab_size"] <= 3000
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.is_fast and len(tok) == manifest["vocab_size"]
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    enc = tok("Das Haus [MASK] ist groß.", "Zweiter Satz")
    assert enc.tokens()[0] == "[CLS]" and "[MASK]" in enc.tokens() and set(enc["token_type_ids"]) == {0, 1}
    first = [w for w, seq in zip(enc.word_ids(), enc.sequence_ids()) if seq == 0]
    assert sorted(set(first)) == [0, 1, 2, 3, 4]  # whitespace words, as XLM-R's fast tokenizer gives

    # the converted fast tokenizer encodes exactly like SentencePiece itself
    processor = spm.SentencePieceProcessor(model_file=str(out / "sentencepiece.model"))
    for lines in kit_sentences(data_dir, per_file=15).values():
        for line in lines:
            assert tok(line, add_special_tokens=False)["input_ids"] == processor.encode(line), line


def test_cli_rerun_skips_refuses_or_replaces(tmp_path, corpus, capsys):
    out = tmp_path / "vocab"
    args = ["vocab", "train", "--corpus", str(corpus["clean"]), "--out", str(out), "--size", "1500",
            "--limit-alphabet", "500", "--wandb", "off"]
    assert main(args) == 0
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert main(args) == 0
    assert "already complete" in capsys.readouterr().out

    # a different size on the same folder: refused, nothing touched
    assert main(args[:-4] + ["--size", "1600", "--limit-alphabet", "500", "--wandb", "off"]) == 1
    err = capsys.readouterr().err
    assert "already holds a different tokenizer" in err and "--force" in err and err.count("\n") == 1
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()} == before

    # the same settings on a different corpus: refused too
    assert main(["vocab", "train", "--corpus", str(corpus["mixture"])] + args[4:]) == 1
    assert "different tokenizer" in capsys.readouterr().err

    assert main(args[:-4] + ["--size", "1600", "--limit-alphabet", "500", "--wandb", "off", "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["vocab_size"] == 1600


def test_refuses_folder_with_foreign_files(tmp_path, corpus):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a complete mbert vocabulary"):
        train_vocab(corpus["clean"], out, VocabSettings(**SMALL))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def _fails(args: list[str], capsys, expected: str, out: Path) -> None:
    assert main(args + ["--out", str(out), "--wandb", "off"]) == 1
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\n")[-1]  # progress lines may come before
    assert expected in last and last.startswith("mbert: error:") and "Traceback" not in err
    assert not out.exists(), "a failed run must not leave an output folder"
    assert not list(out.parent.glob(f".{out.name}*")), "nor a temporary one"


def test_bad_input(tmp_path, corpus, capsys):
    empty = write_clean(tmp_path / "empty", {"en": ["", "\n\n"], "de": [""]})
    _fails(["vocab", "train", "--corpus", str(empty)], capsys, "holds no text", tmp_path / "o1")
    _fails(["vocab", "train", "--corpus", str(empty), "--kind", "sentencepiece"], capsys, "holds no text",
           tmp_path / "o2")

    no_shards = tmp_path / "nothing"
    no_shards.mkdir()
    _fails(["vocab", "train", "--corpus", str(no_shards)], capsys, "holds no Parquet shards", tmp_path / "o3")
    _fails(["vocab", "train", "--corpus", str(tmp_path / "missing")], capsys, "does not exist", tmp_path / "o4")

    broken = tmp_path / "broken"
    write_mixture(broken, {"en": ["A sentence.\nAnother one."]}, shards=1)
    (broken / "part-00001.parquet").write_bytes(b"PAR1 this is not a parquet file")
    _fails(["vocab", "train", "--corpus", str(broken)], capsys, "cannot read corpus shard", tmp_path / "o5")

    wrong_columns = tmp_path / "columns"
    wrong_columns.mkdir()
    pq.write_table(pa.table({"lang": ["en"], "body": ["text"]}), wrong_columns / "part-00000.parquet")
    _fails(["vocab", "train", "--corpus", str(wrong_columns)], capsys, "has no column 'text'", tmp_path / "o6")

    # the kit text has ~2,700 characters (+ their ## forms): 100 entries cannot hold them
    _fails(["vocab", "train", "--corpus", str(corpus["mixture"]), "--size", "100"], capsys,
           "smaller than the alphabet plus special tokens", tmp_path / "o7")
    _fails(["vocab", "train", "--corpus", str(corpus["mixture"]), "--size", "100", "--kind", "sentencepiece"],
           capsys, "smaller than the alphabet plus special tokens", tmp_path / "o8")
    with pytest.raises(UserError, match="contains the corpus"):
        train_vocab(corpus["clean"] / "en", corpus["clean"], VocabSettings(force=True, **SMALL))
    assert (corpus["clean"] / "en" / "part-00000.parquet").is_file()
    assert main(["vocab", "train", "--corpus", str(corpus["mixture"]), "--out", str(tmp_path / "o9"),
                 "--size", "5", "--wandb", "off"]) == 2  # below the settings' minimum: a config error


class RecordingTracker:
    def __init__(self) -> None:
        self.logged, self.summaries = {}, {}

    def log(self, metrics, step=None):
        self.logged.update(metrics)

    def summary(self, metrics):
        self.summaries.update(metrics)


def test_recipe_and_set_overrides_reach_training(tmp_path, corpus):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[run]\nwandb = "off"\n\n[vocab]\nkind = "sentencepiece"\nsp_model_type = "bpe"\n'
                      'size = 3000\ncharacter_coverage = 0.995\n', encoding="utf-8")
    out = tmp_path / "spm"
    assert main(["vocab", "train", "--recipe", str(recipe), "--set", "vocab.size=2500",
                 "--corpus", str(corpus["mixture"]), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["sp_model_type"] == "bpe" and manifest["size"] == 2500
    assert 'size = 2500' in (out / "resolved_config.toml").read_text()

    tracker = RecordingTracker()
    again = train_vocab(corpus["mixture"], tmp_path / "tracked", VocabSettings(kind="sentencepiece",
                        sp_model_type="bpe", size=2500, character_coverage=0.995), tracker)
    assert tracker.logged["vocab/vocab_size"] == again["vocab_size"] == manifest["vocab_size"]
    assert tracker.logged["vocab/bytes_read"] == manifest["bytes_read"] > 0


def test_full_disk_is_one_line_and_keeps_the_earlier_vocabulary(tmp_path, corpus, capsys, monkeypatch):
    from mbert.vocab import train as vocab_train

    out = tmp_path / "vocab"
    args = ["vocab", "train", "--corpus", str(corpus["clean"]), "--out", str(out), "--limit-alphabet", "500",
            "--wandb", "off"]
    assert main(args + ["--size", "1500"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(*args, **kwargs):  # what the Rust tokenizers library raises when a write fails
        raise Exception("No space left on device (os error 28)")
    monkeypatch.setattr(vocab_train, "save_tokenizer_folder", full_disk)
    capsys.readouterr()
    assert main(args + ["--size", "1600", "--force"]) == 1
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\n")[-1]  # after the line saying a different tokenizer is replaced
    assert last.startswith(f"mbert: error: not enough disk space in {out} for the vocabulary: it needs about ")
    assert " is free;" in last and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".vocab*"))


def test_max_documents_trains_on_a_fixed_sample_of_the_documents(tmp_path, corpus):
    """`vocab.max_documents` bounds what the trainer sees (its memory grows with distinct words):
    about that many documents, the same ones every time, for either kind; a cap above the corpus
    size changes nothing."""
    settings = dict(size=4000)
    full = train_vocab(corpus["mixture"], tmp_path / "full", VocabSettings(**settings))
    total = full["documents_read"]
    assert full["documents_used"] == total
    cap = total // 3
    one = train_vocab(corpus["mixture"], tmp_path / "one", VocabSettings(**settings, max_documents=cap))
    train_vocab(corpus["mixture"], tmp_path / "two", VocabSettings(**settings, max_documents=cap))
    assert one["documents_read"] == total and abs(one["documents_used"] - cap) <= max(3, cap // 3)
    assert one["chars_read"] < 0.6 * full["chars_read"]
    assert (tmp_path / "one" / "vocab.txt").read_bytes() == (tmp_path / "two" / "vocab.txt").read_bytes()
    assert (tmp_path / "one" / "vocab.txt").read_bytes() != (tmp_path / "full" / "vocab.txt").read_bytes()
    spm = train_vocab(corpus["mixture"], tmp_path / "spm", VocabSettings(kind="sentencepiece", size=2000,
                                                                          max_documents=cap))
    assert spm["documents_used"] == one["documents_used"] and spm["chars_read"] == one["chars_read"]
    above = train_vocab(corpus["mixture"], tmp_path / "above", VocabSettings(**settings, max_documents=10 * total))
    assert (tmp_path / "above" / "vocab.txt").read_bytes() == (tmp_path / "full" / "vocab.txt").read_bytes()
    assert above["documents_used"] == total
