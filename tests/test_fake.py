"""Fake languages (mbert.fake, corpus fake copies): invertible, disjoint from every real script,
and intact through BERT's normaliser and pre-tokenizer, on real kit text."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tokenizers import pre_tokenizers

from mbert import fake
from mbert.cli import main
from mbert.corpus.extract import extract_corpus, read_manifest
from mbert.corpus.fake_copy import shuffle_words
from mbert.corpus.languages import language
from mbert.corpus.settings import CorpusSettings
from mbert.errors import ConfigError
from mbert.fake import FakeMappingError, fake_text, real_text, unmapped_characters
from mbert.vocab.wordpiece import bert_normalizer, train_wordpiece

SCRIPTS = ["en", "de", "ru", "el", "ar", "he", "hi", "vi", "zh", "ja", "ko"]  # Latin ... Hangul
PUNCTUATION_HEAVY = ("«Quoted» — (a+b)=c; [x] {y} <z> ~tilde~ 50% $5 #1 @me ^_^ `q` \\ | & * ! ? … "
                     "“curly” ‘single’ ¿Qué? ¡Sí! 「日本」『本』【注】、。，：；！？ ؟ ، । ॥ ՞ ־")


def _lines(data_dir: Path, lang: str, n: int = 300) -> list[str]:
    lines = (data_dir / "corpus" / f"{lang}.txt").read_text(encoding="utf-8").split("\n")
    return [line for line in lines if line.strip()][:n]


def _shape(text: str, normalizer=bert_normalizer(False), pre=pre_tokenizers.BertPreTokenizer()) -> list[int]:
    """Lengths of the pre-tokens BERT's (cased) normaliser and pre-tokenizer make of `text`."""
    return [len(word) for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))]


@pytest.mark.parametrize("lang", SCRIPTS)
def test_round_trip_on_kit_text(data_dir, lang):
    text = "\n".join(_lines(data_dir, lang))
    nfc = unicodedata.normalize("NFC", text)
    copy = fake_text(text, "en-fake")
    assert real_text(copy, "en-fake") == nfc
    assert not unmapped_characters(text)  # every character of these languages has a counterpart
    kept = {c for c in nfc if fake.character_class(c) == "keep"}  # spaces, format marks: BERT drops them
    assert kept <= {" ", "\n", "\u200c", "\u200d", "\u200e", "\u200f"}
    assert not set(copy) & (set(nfc) - kept)


@pytest.mark.parametrize("lang", [lang for lang in SCRIPTS if lang != "ko"])
def test_pre_tokens_survive_normalisation(data_dir, lang):
    """Same number of pre-tokens with the same lengths: punctuation is split, CJK spaced, letters kept
    together, in the fake copy exactly as in the real text."""
    for line in _lines(data_dir, lang, 200) + [PUNCTUATION_HEAVY]:
        assert _shape(fake_text(line, "en-fake")) == _shape(line), line


def test_korean_words_keep_their_number(data_dir):
    """Hangul syllables are spelled as jamo in the copy: longer words, same words."""
    for line in _lines(data_dir, "ko", 100):
        real, copy = _shape(line), _shape(fake_text(line, "ko-fake"))
        assert len(copy) == len(real) and copy != real


def test_every_target_is_an_unused_letter_punctuation_mark_or_ideograph():
    """The tables hold what the module says: letters stay inside a word, punctuation is split off,
    ideographs are spaced, by the same normaliser the vocabulary uses."""
    sources_all, targets_all = set(), set()
    for name, (sources, targets, _) in fake._CLASSES.items():
        points = fake._points(targets)
        assert len(points) == len(set(points))
        for cp in points:
            char = chr(cp)
            category = unicodedata.category(char)
            assert unicodedata.normalize("NFC", char) == char
            if name == "letter":
                assert category == "Lo" and _shape(f"a{char}b") == [3], hex(cp)
            elif name == "punctuation":
                assert category[0] == "P" and _shape(f"a{char}b") == [1, 1, 1], hex(cp)
            else:
                assert category == "Lo" and _shape(f"a{char}b") == [1, 1, 1], hex(cp)
        sources_all.update(fake._points(sources))
        targets_all.update(points)
    assert not sources_all & targets_all  # no fake character is one of a source range's


def test_fake_numbers_are_disjoint_on_the_core_and_one_to_one():
    for name, (sources, _, core) in fake._CLASSES.items():
        limit = {"letter": 5, "punctuation": 4, "ideograph": 1}[name]  # as the module docstring says
        core_points = [cp for cp in fake._points(sources)[:core] if fake.character_class(chr(cp)) == name]
        images = {n: [fake._tables(n)[0][cp] for cp in core_points] for n in range(1, limit + 3)}
        for image in images.values():
            assert len(set(image)) == len(image)  # one-to-one
        for a in images:
            for b in images:
                if 0 < b - a <= limit:
                    assert not set(images[a]) & set(images[b]), (name, a, b)
        assert set(images[1]) & set(images[limit + 2])  # the documented limit is the real one
    assert fake_text("Paris", "en-fake") == fake_text("Paris", "de-fake")  # same number: same script
    assert not set(fake_text("Paris", "en-fake")) & set(fake_text("Paris", "en-fake2"))


def test_characters_outside_the_tables():
    odd = "x\u1200\u0ed4"  # Ethiopic and Lao: no mBERT language, not in the tables
    assert unmapped_characters(odd) == Counter({"\u1200": 1, "\u0ed4": 1})
    copy = fake_text(odd, "en-fake")
    assert len(copy) == 3 and copy[1] == copy[2]  # both take the letter fallback
    assert real_text(copy, "en-fake") == "x\ufffd\ufffd"
    with pytest.raises(FakeMappingError, match=r"U\+1200 ETHIOPIC SYLLABLE HA"):
        fake_text(odd, "en-fake", strict=True)
    with pytest.raises(FakeMappingError, match="'a' U\\+0061 .* is not a character of en-fake"):
        real_text("abc", "en-fake")
    with pytest.raises(FakeMappingError, match="not a fake language code"):
        fake_text("abc", "en")


def test_fake_codes_are_languages():
    entry = language("en-fake")
    assert (entry.name, entry.fake_of, entry.script) == ("Fake English", "en", "Qaaa")
    assert language("zh-hant-fake2").fake_of == "zh-hant" and language("de-fake2").script == "Qaab"
    with pytest.raises(ConfigError, match="fake language 'xx-fake' copies an unknown language"):
        language("xx-fake")
    with pytest.raises(ConfigError, match="unknown language code 'en-fake1'"):
        language("en-fake1")
    with pytest.raises(ConfigError, match="list it in corpus.fake"):
        CorpusSettings(sources={"en-fake": ["x.txt"]}).validate()


def test_wordpiece_on_real_and_fake_text_shares_only_special_tokens(data_dir):
    """A vocabulary trained by the project's trainer on English + Fake English: the two languages'
    tokenisations never use the same entry, apart from [CLS]/[SEP]; their token counts match."""
    lines = _lines(data_dir, "en", 1500)
    copies = [fake_text(line, "en-fake") for line in lines]
    tokenizer = train_wordpiece([lines, copies], size=1500, uncased=False, min_frequency=2,
                                show_progress=False)
    real_ids = [tokenizer.encode(line).ids for line in lines]
    fake_ids = [tokenizer.encode(copy).ids for copy in copies]
    special = {tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[UNK]")}
    shared = {i for ids in real_ids for i in ids} & {i for ids in fake_ids for i in ids}
    assert shared <= special
    assert tokenizer.token_to_id("[UNK]") not in {i for ids in real_ids + fake_ids for i in ids}
    real_total, fake_total = sum(map(len, real_ids)), sum(map(len, fake_ids))
    assert abs(real_total - fake_total) <= 0.01 * real_total


def test_corpus_fake_copy_end_to_end(data_dir, tmp_path, capsys):
    clean = tmp_path / "clean"
    source = str(data_dir / "corpus" / "en.txt")
    manifest = extract_corpus(CorpusSettings(sources={"en": [source]}, workers=1, fake=["en-fake"]), clean)
    real, copy = manifest["languages"]["en"], manifest["languages"]["en-fake"]
    assert manifest["complete"] and copy["fake_of"] == "en" and copy["word_order"] == "same"
    assert (copy["documents"], copy["sentences"], copy["characters"]) == \
        (real["documents"], real["sentences"], real["characters"])
    real_rows = pq.read_table(sorted((clean / "en").glob("part-*.parquet"))).to_pylist()
    fake_rows = pq.read_table(sorted((clean / "en-fake").glob("part-*.parquet"))).to_pylist()
    assert [r["id"] for r in fake_rows] == [r["id"] for r in real_rows]
    assert [real_text(r["text"], "en-fake") for r in fake_rows] == [r["text"] for r in real_rows]

    # the single-stage command: the shuffled-order ablation keeps each sentence's words
    assert main(["corpus", "fake", "--clean", str(clean), "--code", "en-fake2", "--word-order", "shuffled",
                 "--wandb", "off"]) == 0
    shuffled = pq.read_table(sorted((clean / "en-fake2").glob("part-*.parquet"))).to_pylist()
    moved = 0
    for real_row, row in zip(real_rows, shuffled):
        expected = fake_text(real_row["text"], "en-fake2").split("\n")
        got = row["text"].split("\n")
        assert len(got) == len(expected)
        for want, line in zip(expected, got):
            assert Counter(line.split()) == Counter(want.split())
            moved += line != want
    assert moved > 0.5 * real["sentences"]
    entries = read_manifest(clean)["languages"]
    assert entries["en-fake2"]["word_order"] == "shuffled" and entries["en-fake"]["complete"]
    again = tmp_path / "again"  # the same seed gives the same corpus
    extract_corpus(CorpusSettings(sources={"en": [source]}, workers=1, fake=["en-fake2"],
                                  fake_word_order="shuffled"), again)
    assert pq.read_table(sorted((again / "en-fake2").glob("part-*.parquet"))).to_pylist() == shuffled

    # sampled like any language
    assert main(["corpus", "sample", "--clean", str(clean), "--out", str(tmp_path / "mix"),
                 "--languages", "en", "en-fake", "--wandb", "off"]) == 0
    mixture = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    assert set(mixture["languages"]) == {"en", "en-fake"}
    assert mixture["languages"]["en-fake"]["p"] == pytest.approx(0.5)

    # an uncased vocabulary would merge case in the real text only: refused
    assert main(["vocab", "train", "--corpus", str(tmp_path / "mix"), "--out", str(tmp_path / "vocab"),
                 "--size", "500", "--uncased", "--wandb", "off"]) == 2
    assert "fake language(s) en-fake" in capsys.readouterr().err
    # a fake copy needs its base language
    assert main(["corpus", "fake", "--clean", str(clean), "--code", "de-fake", "--wandb", "off"]) == 1
    assert "extract de first" in capsys.readouterr().err


def test_shuffle_words_keeps_whitespace_in_place():
    import random

    sentence = " a  b\tc d "
    out = shuffle_words(sentence, random.Random(3))
    assert Counter(out.split()) == Counter("abcd")
    assert [c for c in out if c.isspace()] == [c for c in sentence if c.isspace()]
    assert out[0] == " " and out[-1] == " "


def test_the_tokenizer_report_names_the_fake_script():
    from mbert.unicode_scripts import entry_script

    assert entry_script("##" + fake_text("the", "en-fake")) == "Fake" == entry_script(fake_text(";", "en-fake2"))
    assert entry_script("the") == "Latin" and entry_script(fake_text("中文", "zh-fake")) == "Han"
