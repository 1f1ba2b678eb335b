"""Benchmark of `mbert vocab train`: training throughput (MB of text per second) and peak memory.

The kit corpus (`shared/data/corpus/*.txt`, 48 languages) is written as a mixture folder of Parquet
shards, repeated R times, and each configuration is trained in a fresh child process so its peak
memory is its own: `peak RSS` is the whole process (Rust trainer tables included, from
`resource.getrusage`), `peak Python heap` is what `tracemalloc` sees (the streaming reader's
batches). Repeating the corpus shows that memory does not grow with corpus size.

    python bench/bench_vocab.py                       # defaults: see --help
    python bench/bench_vocab.py --kinds wordpiece --repeats 1 4 --size 30000 --python-heap
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MBERT_TEST_DATA", REPO.parent / "shared" / "data"))
ROWS_PER_SHARD = 2000


def write_mixture(data_dir: Path, out: Path, repeats: int) -> int:
    """The kit corpus as mixture shards (lang, id, title, text), `repeats` times over; returns bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for path in sorted((data_dir / "corpus").glob("*.txt")):
        for i, doc in enumerate(path.read_text(encoding="utf-8").split("\n\n")):
            if doc.strip():
                rows.append((path.stem, f"{path.stem}-{i}", doc))
    rows = rows * repeats
    random.Random(0).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, len(rows), ROWS_PER_SHARD)):
        part = rows[start:start + ROWS_PER_SHARD]
        pq.write_table(pa.table({"lang": [r[0] for r in part], "id": [r[1] for r in part],
                                 "title": [""] * len(part), "text": [r[2] for r in part]}),
                       out / f"part-{shard:05d}.parquet")
    return sum(len(r[2].encode()) for r in rows)


def _cpu_seconds() -> float:
    """User + system time of this process, all threads (the Rust and C++ trainers are threaded)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(corpus: Path, out: Path, kind: str, sp_model_type: str, size: int, trace: bool) -> dict:
    from mbert.progress import set_quiet
    from mbert.vocab.settings import VocabSettings
    from mbert.vocab.train import train_vocab

    set_quiet(True)
    if trace:  # slows Python allocations down: off when measuring speed
        tracemalloc.start()
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    manifest = train_vocab(corpus, out, VocabSettings(kind=kind, sp_model_type=sp_model_type, size=size))
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    python_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    mb = manifest["bytes_read"] / 1e6
    return {"mb": mb, "seconds": wall, "cpu_seconds": cpu, "mb_per_s": mb / wall,
            "read_mb_per_s": mb / max(manifest["read_seconds"], 1e-9), "vocab_size": manifest["vocab_size"],
            "peak_rss_mb": rss_kib / 1024, "peak_python_mb": python_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data kit")
    parser.add_argument("--kinds", nargs="+", default=["wordpiece", "sentencepiece-bpe", "sentencepiece-unigram"],
                        choices=["wordpiece", "sentencepiece-bpe", "sentencepiece-unigram"])
    parser.add_argument("--repeats", nargs="+", type=int, default=[1, 4], help="corpus repetitions to compare")
    parser.add_argument("--size", type=int, default=30000, help="vocabulary size")
    parser.add_argument("--python-heap", action="store_true",
                        help="also measure the peak Python heap with tracemalloc (slows reading down)")
    parser.add_argument("--child", nargs=6, metavar=("CORPUS", "OUT", "KIND", "SP_TYPE", "SIZE", "TRACE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        corpus, out, kind, sp_type, size, trace = args.child
        print(json.dumps(child(Path(corpus), Path(out), kind, sp_type, int(size), trace == "1")))
        return

    print(f"CPU cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; vocabulary size {args.size:,}; "
          f"kit corpus from {args.data}")
    print("| kind | corpus | MB | seconds | CPU seconds | MB/s (total) | MB/s (reading) | vocab | peak RSS (MB) | "
          "peak Python heap (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for repeats in args.repeats:
            corpus = Path(tmp) / f"mixture-x{repeats}"
            write_mixture(args.data, corpus, repeats)
            for spec in args.kinds:
                kind, _, sp_type = spec.partition("-")
                out = Path(tmp) / f"vocab-{spec}-x{repeats}"
                result = subprocess.run([sys.executable, __file__, "--child", str(corpus), str(out), kind,
                                         sp_type or "unigram", str(args.size), "1" if args.python_heap else "0"],
                                        check=True, capture_output=True, text=True, cwd=REPO)
                r = json.loads(result.stdout.strip().splitlines()[-1])
                print(f"| {spec} | kit x{repeats} | {r['mb']:.1f} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                      f"{r['mb_per_s']:.2f} | "
                      f"{r['read_mb_per_s']:.2f} | "
                      f"{r['vocab_size']:,} | {r['peak_rss_mb']:.0f} | "
                      + ("–" if r["peak_python_mb"] is None else f"{r['peak_python_mb']:.1f}") + " |", flush=True)


if __name__ == "__main__":
    main()
