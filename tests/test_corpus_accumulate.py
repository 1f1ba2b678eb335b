"""Languages accumulate in one clean folder (README: `--lang ja` after `--lang el` keeps both; corpus
extraction split across machines by language), and `mbert corpus sample` then mixes all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mbert.cli import main


def test_languages_extracted_one_after_another_are_all_complete_and_all_mixed(data_dir: Path, tmp_path: Path,
                                                                             capsys) -> None:
    clean = tmp_path / "clean"

    def extract(lang: str) -> None:
        assert main(["corpus", "extract", "--lang", lang, "--source", str(data_dir / "corpus" / f"{lang}.txt"),
                     "--out", str(clean), "--workers", "1", "--wandb", "off"]) == 0

    extract("kk")
    first = {p: p.stat().st_mtime_ns for p in (clean / "kk").iterdir()}
    documents = json.loads((clean / "manifest.json").read_text())["languages"]["kk"]["documents"]
    extract("mr")
    manifest = json.loads((clean / "manifest.json").read_text())
    assert manifest["complete"] is True and set(manifest["languages"]) == {"kk", "mr"}
    assert all(entry["complete"] for entry in manifest["languages"].values())
    assert manifest["languages"]["kk"]["documents"] == documents > 0  # kept as it was
    assert {p: p.stat().st_mtime_ns for p in (clean / "kk").iterdir()} == first  # not redone
    assert manifest["totals"]["documents"] == sum(e["documents"] for e in manifest["languages"].values())

    mixture = tmp_path / "mixture"
    capsys.readouterr()
    assert main(["corpus", "sample", "--clean", str(clean), "--out", str(mixture), "--wandb", "off"]) == 0
    mixed = json.loads((mixture / "manifest.json").read_text())
    assert set(mixed["languages"]) == {"kk", "mr"}
    assert sum(mixed["languages"][lang]["q"] for lang in ("kk", "mr")) == pytest.approx(1.0)
    rows = pq.read_table(sorted(mixture.glob("part-*.parquet")), columns=["lang"]).column("lang").to_pylist()
    assert set(rows) == {"kk", "mr"}
    assert rows.count("kk") >= documents  # the small language is repeated, not dropped

