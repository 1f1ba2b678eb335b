"""Bad input on real files: each gives one clear message, a non-zero exit, and no output that
looks complete (no complete manifest, no language folder)."""

from __future__ import annotations

import bz2
import json
import shutil
from pathlib import Path

import pytest

from mbert.cli import main

WIKI = "wikipedia"
EL = "elwiki-20230501-pages-articles-multistream-excerpt"
EN_SMALL = "enwiki-table-markup.xml.bz2"


def _extract(lang: str, sources: list[Path], out: Path) -> int:
    args = ["corpus", "extract", "--lang", lang, "--out", str(out), "--workers", "1", "--wandb", "off"]
    for source in sources:
        args += ["--source", str(source)]
    return main(args)


def _assert_nothing_complete(out: Path, lang: str) -> None:
    manifest = out / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        assert not data["complete"] and not data["languages"].get(lang, {}).get("complete")
    assert not (out / lang).exists()


def _run_bad(lang: str, sources: list[Path], out: Path, capsys, expect: str) -> None:
    capsys.readouterr()
    assert _extract(lang, sources, out) == 1  # a failure, not invalid settings (2)
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbert: error:") and "Traceback" not in err and err.count("\n") == 0, err
    assert expect in err, err
    _assert_nothing_complete(out, lang)


def test_truncated_single_stream_bz2(data_dir, tmp_path, capsys):
    raw = (data_dir / WIKI / EN_SMALL).read_bytes()
    bad = tmp_path / "enwiki-truncated.xml.bz2"
    bad.write_bytes(raw[: len(raw) // 2])
    _run_bad("en", [bad], tmp_path / "out", capsys, "corrupt or truncated")


def test_truncated_multistream_dump(data_dir, tmp_path, capsys):
    raw = (data_dir / WIKI / f"{EL}.xml.bz2").read_bytes()
    bad = tmp_path / f"{EL}.xml.bz2"
    bad.write_bytes(raw[: len(raw) * 3 // 4])
    shutil.copy(data_dir / WIKI / f"{EL}-index.txt.bz2", tmp_path)
    _run_bad("el", [bad], tmp_path / "out", capsys, "truncated")


def test_corrupt_bz2_in_the_middle(data_dir, tmp_path, capsys):
    raw = bytearray((data_dir / WIKI / f"{EL}.xml.bz2").read_bytes())
    middle = len(raw) // 3
    raw[middle:middle + 64] = bytes(64)  # zeroed block inside a page stream
    bad = tmp_path / f"{EL}.xml.bz2"
    bad.write_bytes(bytes(raw))
    shutil.copy(data_dir / WIKI / f"{EL}-index.txt.bz2", tmp_path)
    _run_bad("el", [bad], tmp_path / "out", capsys, "corrupt")


def test_malformed_xml(data_dir, tmp_path, capsys):
    xml = bz2.decompress((data_dir / WIKI / EN_SMALL).read_bytes())
    cut = xml.index(b"</page>") + len(b"</page>")
    bad = tmp_path / "enwiki-malformed.xml"
    bad.write_bytes(xml[:cut] + b"\n<page><title>Broken</titel></page>" + xml[cut:])
    _run_bad("en", [bad], tmp_path / "out", capsys, "malformed or truncated XML")


def test_xml_cut_mid_page(data_dir, tmp_path, capsys):
    xml = bz2.decompress((data_dir / WIKI / EN_SMALL).read_bytes())
    bad = tmp_path / "enwiki-cut.xml"
    bad.write_bytes(xml[: len(xml) // 2])
    _run_bad("en", [bad], tmp_path / "out", capsys, "malformed or truncated XML")


def test_empty_and_missing_sources(tmp_path, capsys):
    empty = tmp_path / "empty.xml.bz2"
    empty.write_bytes(b"")
    _run_bad("en", [empty], tmp_path / "out", capsys, "is empty")
    for missing, expect in ((tmp_path / "nowhere.xml.bz2", "does not exist"), (tmp_path / "nothing-*.bz2", "matches no file")):
        capsys.readouterr()  # a missing source is an invalid setting: exit 2, before any work
        assert _extract("en", [missing], tmp_path / "out") == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("mbert: error:") and err.count("\n") == 0 and expect in err, err
        _assert_nothing_complete(tmp_path / "out", "en")


def test_siteinfo_language_differs_from_lang(data_dir, tmp_path, capsys):
    _run_bad("uk", [data_dir / WIKI / f"{EL}.xml.bz2"], tmp_path / "out", capsys,
             "is a 'el' Wikipedia dump")


def test_unwritable_output_folder(data_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _run_bad("kk", [data_dir / "corpus" / "kk.txt"], blocker / "out", capsys, "cannot create output folder")


def test_failure_mid_dump_in_one_language_marks_the_run_incomplete(data_dir, tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    bad = tmp_path / "broken.xml"
    xml = bz2.decompress((data_dir / WIKI / EN_SMALL).read_bytes())
    bad.write_bytes(xml[: len(xml) * 2 // 3])  # first pages whole, then cut
    recipe.write_text(f'[corpus]\nworkers = 1\nsources = {{kk = ["{data_dir / "corpus" / "kk.txt"}"], '
                      f'en = ["{bad}"]}}\n')
    out = tmp_path / "out"
    assert main(["corpus", "extract", "--recipe", str(recipe), "--out", str(out), "--wandb", "off"]) == 1
    data = json.loads((out / "manifest.json").read_text())
    assert data["complete"] is False and data["languages"]["en"]["complete"] is False
    assert not (out / "en").exists()
    capsys.readouterr()


def test_hub_dataset_source_offline_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _run_bad("sw", ["hf:wikimedia/wikipedia:20231101.sw"], tmp_path / "out", capsys,
             "cannot load 'wikimedia/wikipedia:20231101.sw' with datasets.load_dataset")


@pytest.mark.parametrize("name, position, bit, with_index", [
    ("bgwiki-latest-pages-articles-shortened.xml.bz2", 36888, 7, False),  # read as text before
    (EN_SMALL, 2000, 0, False),                                           # read as text before
    (f"{EL}.xml.bz2", 2000, 7, False),    # a page stream's header: Python's bz2 reader stopped there
    ("mrwiki-20230501-pages-articles-multistream-excerpt.xml.bz2", 2000, 3, False),  # broke <siteinfo>
    ("mrwiki-20230501-pages-articles-multistream-excerpt.xml.bz2", 2000, 3, True),   # in a byte range
])
def test_bit_flipped_dump_is_reported_as_corrupt_compressed_data(data_dir, tmp_path, capsys, name, position,
                                                                 bit, with_index):
    raw = bytearray((data_dir / WIKI / name).read_bytes())
    raw[position] ^= 1 << bit
    # without its index beside it a multistream dump is read in one pass
    bad = tmp_path / (name if with_index else name.replace("multistream", "single"))
    bad.write_bytes(bytes(raw))
    if with_index:
        shutil.copy(data_dir / WIKI / name.replace(".xml.bz2", "-index.txt.bz2"), tmp_path)
    _run_bad(name[:2], [bad], tmp_path / "out", capsys, "corrupt")


def test_intact_compressed_text_is_refused_as_such(data_dir, tmp_path, capsys):
    text = tmp_path / "is.txt.bz2"
    text.write_bytes(bz2.compress((data_dir / "corpus" / "is.txt").read_bytes()))
    _run_bad("is", [text], tmp_path / "out", capsys, "is compressed but is not a MediaWiki dump")


def test_text_in_another_script_than_the_language_is_refused(data_dir, tmp_path, capsys):
    from mbert.corpus.languages import language
    from mbert.corpus.sources import check_text_script, detect

    _run_bad("en", [data_dir / "corpus" / "ja.txt"], tmp_path / "out", capsys,
             "does not look like English: its letters are Hiragana 45%, Han 39%")
    # Serbian is written in Cyrillic and in Latin: the kit's Latin Serbian is taken as Serbian
    check_text_script(detect(data_dir / "corpus" / "sr.txt"), language("sr"))
    assert main(["corpus", "extract", "--lang", "en", "--source", str(data_dir / "corpus" / "ja.txt"), "--out",
                 str(tmp_path / "out"), "--workers", "1", "--wandb", "off", "--set", "corpus.check_script=false"]) == 0


def test_full_disk_is_one_line_and_keeps_earlier_languages(data_dir, tmp_path, capsys, monkeypatch):
    import errno

    import pyarrow.parquet as pq

    out = tmp_path / "out"
    assert _extract("is", [data_dir / "corpus" / "is.txt"], out) == 0
    kept = pq.read_table(out / "is" / "part-00000.parquet").to_pylist()

    def full_disk(*args, **kwargs):  # as pyarrow raises it
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    _run_bad("en", [data_dir / "corpus" / "en.txt"], out, capsys,
             f"not enough disk space in {out} for the clean corpus: it needs about ")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["languages"]["is"]["complete"] and pq.read_table(out / "is" / "part-00000.parquet").to_pylist() == kept


def _tmpfs_available() -> bool:
    import subprocess
    probe = "mkdir -p /tmp/mbert-tmpfs-probe && mount -t tmpfs -o size=64k tmpfs /tmp/mbert-tmpfs-probe"
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", probe],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _tmpfs_available(), reason="needs `unshare` and user namespaces to mount a small tmpfs")
def test_extract_into_a_really_full_disk(data_dir, tmp_path):
    """The real thing: a 1 MB tmpfs (in a private mount namespace, no root needed) as --out."""
    import subprocess
    import sys

    full = tmp_path / "full"
    full.mkdir()
    script = (f"mount -t tmpfs -o size=1m tmpfs {full} && {sys.executable} -m mbert corpus extract --lang en "
              f"--source {data_dir / 'lab' / 'en.txt'} --out {full / 'clean'} --workers 2 --wandb off --quiet")
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.startswith(f"mbert: error: not enough disk space in {full / 'clean'} for the clean "
                                    f"corpus: it needs about ") and result.stderr.count("\n") == 1, result.stderr
