"""bench/make_dumps.py (synthetic multistream dumps from the kit's pages) at tiny size."""

from __future__ import annotations

import bz2
import json
import os
import subprocess
import sys
from pathlib import Path

from mbert.cli import main

EL = "elwiki-20230501-pages-articles-multistream-excerpt.xml.bz2"  # 242 pages, 78 of them articles


def test_generated_dump_extracts_every_copy(repo_dir, data_dir, tmp_path):
    out = tmp_path / "dumps"
    subprocess.run([sys.executable, str(repo_dir / "bench" / "make_dumps.py"), "--out", str(out),
                    "--languages", "el", "--pages", "484"], check=True, capture_output=True,
                   env={**os.environ, "MBERT_TEST_DATA": str(data_dir)})
    dump = out / "el-elwiki-synthetic-pages-articles-multistream.xml.bz2"
    index = out / "el-elwiki-synthetic-pages-articles-multistream-index.txt.bz2"
    lines = [line.split(":", 2) for line in bz2.decompress(index.read_bytes()).decode().splitlines()]
    assert len(lines) == 484 and len({i for _, i, _ in lines}) == 484 and len({t for _, _, t in lines}) == 484
    raw = dump.read_bytes()
    offsets = sorted({int(o) for o, _, _ in lines})
    assert len(offsets) == 5  # 100 pages per stream
    for offset, page_id, _ in lines[::97]:  # the offset is the start of the bz2 stream holding the page
        stream = bz2.BZ2Decompressor().decompress(raw[int(offset):]).decode()
        assert f"<id>{page_id}</id>" in stream
    assert json.loads((out / "dumps.json").read_text())["languages"][0]["pages"] == 484

    for name, source in (("copies", dump), ("original", data_dir / "wikipedia" / EL)):
        assert main(["--quiet", "corpus", "extract", "--lang", "el", "--source", str(source),
                     "--out", str(tmp_path / name), "--workers", "1", "--set", "corpus.chunk_mb=0.2",
                     "--wandb", "off"]) == 0
    copies, original = (json.loads((tmp_path / n / "manifest.json").read_text())["languages"]["el"]
                        for n in ("copies", "original"))
    assert copies["pages_read"] == 484 and original["pages_read"] == 242
    # de-duplication keeps the perturbed copy of every article and most of its sentences
    assert copies["documents"] == 2 * original["documents"] and copies["duplicates"]["documents"] == 0
    assert copies["sentences"] > 1.6 * original["sentences"]
    assert copies["units"] >= 2  # the index cut the dump into byte ranges
