"""Full-scale readiness: bench/make_dumps.py (synthetic multistream dumps from the kit's pages) at tiny
size, and the buffers that must not grow with the corpus."""

from __future__ import annotations

import bz2
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

from mbert.cli import main
from mbert.corpus.shards import ShardWriter
from mbert.corpus.worker import _HashSpill

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


def test_hash_spill_buffers_share_one_budget(tmp_path, monkeypatch):
    """De-duplication spills hashes to 2^bits buckets; bits grow with the language, memory must not."""
    monkeypatch.setattr(_HashSpill, "BUFFER", 4096)
    spill = _HashSpill(tmp_path, "sentence", bits=4)
    values = np.random.default_rng(0).integers(0, 2**63, 3000, dtype=np.uint64)
    values = np.concatenate([values, values[:500]])  # positions 3000..3499 repeat earlier ones
    peak = 0
    for position, value in enumerate(values.tolist()):
        spill.add(value, position)
        peak = max(peak, sum(len(buffer) for buffer in spill.buffers))
    assert peak <= 4096
    assert spill.repeats().tolist() == list(range(3000, 3500))


def test_shard_writer_flushes_by_bytes(tmp_path):
    """`corpus sample` deals rows into one writer per bucket; each must hold a bounded share of text."""
    writer = ShardWriter(tmp_path / "bucket.parquet", group_bytes=1000)
    for index in range(10):
        writer.write(id=str(index), title="t", text="x" * 300)
        assert writer.buffered_bytes < 1000
    path = writer.close()
    assert pq.ParquetFile(path).metadata.num_row_groups == 3 and pq.read_table(path).num_rows == 10


def test_disk_budget_splits_the_data_path_and_counts_repeats(repo_dir, tmp_path):
    """`bench/scaling.py --disk RUN`: the figures behind keeping the mixture a copy (README, "Disk")."""
    sizes = {"clean/en/part-00000.parquet": 3000, "mixture/part-00000.parquet": 2000,
             "store/tokens.bin": 4000, "pretrain/data/index.bin": 1000}
    for name, size in sizes.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    # en is up-sampled (50 of its 150 characters are a second copy), is down-sampled (no repeats)
    manifest = {"languages": {"en": {"size": 100.0, "achieved": 150.0}, "is": {"size": 200.0, "achieved": 50.0}}}
    (tmp_path / "mixture" / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([sys.executable, str(repo_dir / "bench" / "scaling.py"), "--disk", str(tmp_path)],
                          check=True, capture_output=True, text=True)
    budget = json.loads(done.stdout)
    manifest_bytes = len(json.dumps(manifest))
    assert budget["clean_parquet_mb"] == 0.0 and budget["token_store_mb"] == 0.0  # MB, rounded to 0.01
    assert budget["mixture_share"] == round((2000 + manifest_bytes) / (10000 + manifest_bytes), 4)
    assert budget["mixture_repeat_share"] == 0.25
