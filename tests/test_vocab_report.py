"""The per-language tokenizer report, on real kit text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mbert.cli import main
from mbert.errors import UserError
from mbert.vocab.report import WORD, tokenizer_report
from mbert.vocab.settings import VocabSettings
from mbert.vocab.train import train_vocab
from test_vocab_train import LANGS, SMALL, kit_documents, write_clean, write_mixture


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    docs = {lang: kit_documents(data_dir, lang) for lang in LANGS}
    mixture = write_mixture(root / "mixture", docs)
    clean = write_clean(root / "clean", docs)
    train_vocab(mixture, root / "vocab", VocabSettings(**SMALL))
    return {"vocab": root / "vocab", "clean": clean, "mixture": mixture, "root": root}


class RecordingTracker:
    def __init__(self) -> None:
        self.tables, self.images = {}, {}

    def table(self, key, columns, rows):
        self.tables[key] = (list(columns), [list(r) for r in rows])

    def image(self, key, path):
        self.images[key] = Path(path)


def test_report_metrics_on_kit_text(folders, data_dir, tmp_path):
    from transformers import AutoTokenizer

    texts = {"de": [data_dir / "corpus" / "de.txt"], "zh": [data_dir / "corpus" / "zh.txt"],
             "el": [data_dir / "tatoeba" / "tatoeba.ell-eng.ell"]}  # Greek: not in the training text
    tracker = RecordingTracker()
    report = tokenizer_report(folders["vocab"], texts, tmp_path / "r", tracker, max_lines_per_language=200)
    langs = report["languages"]
    assert list(langs) == ["de", "zh", "el"] and all(m["lines"] == 200 for m in langs.values())

    # recount German independently: each word tokenized on its own
    tok = AutoTokenizer.from_pretrained(str(folders["vocab"]))
    lines = [l for l in (data_dir / "corpus" / "de.txt").read_text().split("\n") if l.strip()][:200]
    pieces = [len(tok.tokenize(w)) for line in lines for w in WORD.findall(line)]
    de = langs["de"]
    assert de["words"] == len(pieces) and de["subwords"] == sum(pieces)
    assert de["fertility"] == pytest.approx(sum(pieces) / len(pieces)) and de["fertility_unit"] == "word"
    assert de["split_share"] == pytest.approx(sum(p >= 2 for p in pieces) / len(pieces))
    assert 1.0 < de["fertility"] < 4.0 and de["unk_rate"] < 0.01 and de["char_coverage"] > 0.99

    zh = langs["zh"]  # written without spaces: per character, no split share
    assert zh["fertility_unit"] == "char" and zh["split_share"] is None and 0.5 < zh["fertility"] <= 1.0
    el = langs["el"]  # an unseen script: most characters unknown
    assert el["char_coverage"] < 0.5 and el["unk_rate"] > 0.3 and el["missing_chars"]
    assert all("GREEK" in __import__("unicodedata").name(c) for c in el["missing_chars"][:5])

    scripts = report["scripts"]
    assert {"Latin", "Han", "Cyrillic", "Arabic", "Devanagari", "Hiragana"} <= set(scripts)
    assert sum(s["entries"] for s in scripts.values()) == report["vocab_size"] - 5  # all but the specials
    assert sum(s["share"] for s in scripts.values()) == pytest.approx(1.0)

    out = tmp_path / "r"
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    md = (out / "report.md").read_text()
    assert "| de | 200 |" in md and "| zh | 200 |" in md and "| Han |" in md
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "resolved_config.toml").is_file()
    assert [row[0] for row in tracker.tables["vocab/report"][1]] == ["de", "zh", "el"]
    assert tracker.images["vocab/report_chart"] == out / "report.png"


def test_report_reads_every_text_layout(folders, data_dir, tmp_path):
    clean = tokenizer_report(folders["vocab"], folders["clean"], tmp_path / "a", max_lines_per_language=50)
    assert sorted(clean["languages"]) == sorted(LANGS)
    assert all(m["lines"] == 50 for m in clean["languages"].values())
    mixture = tokenizer_report(folders["vocab"], folders["mixture"], tmp_path / "b", max_lines_per_language=50)
    assert sorted(mixture["languages"]) == sorted(LANGS)

    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "fi.txt").write_text("Tämä on lause.\n\nToinen\u2028lause samassa rivissä.\n", encoding="utf-8")
    report = tokenizer_report(folders["vocab"], txt, tmp_path / "c")
    assert report["languages"]["fi"]["lines"] == 2  # split on "\n" only, blank lines skipped


def test_report_cli(folders, data_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["vocab", "report", "--tokenizer", str(folders["vocab"]), "--text",
                 f"ja={data_dir / 'corpus' / 'ja.txt'}", f"ko={data_dir / 'tatoeba' / 'tatoeba.kor-eng.kor'}",
                 "--out", str(out), "--max-lines", "40", "--wandb", "off"]) == 0
    assert "Tokenizer report" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert set(report["languages"]) == {"ja", "ko"} and report["languages"]["ko"]["char_coverage"] < 0.5


def test_report_bad_input(folders, tmp_path, capsys):
    not_tokenizer = tmp_path / "empty"
    not_tokenizer.mkdir()
    assert main(["vocab", "report", "--tokenizer", str(not_tokenizer), "--text", str(folders["clean"]),
                 "--out", str(tmp_path / "o"), "--wandb", "off"]) == 1
    assert "cannot load a tokenizer" in capsys.readouterr().err
    assert main(["vocab", "report", "--tokenizer", str(folders["vocab"]), "--text", "en",
                 "--out", str(tmp_path / "o"), "--wandb", "off"]) == 1
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(UserError, match="does not exist"):
        tokenizer_report(folders["vocab"], {"en": [tmp_path / "nope.txt"]}, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_run_layout_report_inside_vocab_folder(folders, tmp_path):
    """`mbert run` writes the report into RUN/vocab/report: the vocabulary stays complete and reusable."""
    from mbert.vocab.train import is_complete

    run_vocab = tmp_path / "run" / "vocab"
    first = train_vocab(folders["mixture"], run_vocab, VocabSettings(**SMALL))
    tokenizer_report(run_vocab, folders["clean"], run_vocab / "report", max_lines_per_language=20)
    assert is_complete(run_vocab) and (run_vocab / "report" / "report.json").is_file()
    assert train_vocab(folders["mixture"], run_vocab, VocabSettings(**SMALL)) == first
    assert (run_vocab / "report" / "report.json").is_file()
