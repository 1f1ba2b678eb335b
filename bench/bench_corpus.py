"""Extraction throughput of `mbert corpus extract` against wikiextractor, on the same dumps, same run.

For every MediaWiki dump of the data kit (or the files given) both tools run end to end as fresh
processes on the compressed dump, with one worker each: `mbert corpus extract --workers 1` (parse,
clean, segment, de-duplicate, write Parquet + manifest with checksums) and
`python -m wikiextractor.WikiExtractor --processes 1` (which also starts a writer process).
Throughput is per CPU-second (user+sys of every process involved), i.e. per core; start-up
(imports) is included for both, which weighs most on the tiny dumps.

A second table measures the steady-state core of both tools in this process, without start-up:
our extraction worker on the whole dump (read, clean, segment, write Parquet) against
wikiextractor's own page loop (`collect_pages`) and cleaner (`Extractor.extract`) on the same file.

    python bench/bench_corpus.py                       # the kit's dumps (../shared/data/wikipedia)
    python bench/bench_corpus.py --repeat 3 DUMP...    # other dumps; best of 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mbert.corpus.dump import read_siteinfo  # noqa: E402
from mbert.corpus.languages import registry  # noqa: E402

KIT = Path(os.environ.get("MBERT_TEST_DATA", REPO.parent / "shared" / "data")) / "wikipedia"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ours(path: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, pages read): `mbert corpus extract --workers 1` in a fresh process."""
    lang = source_language(path)
    wall, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "mbert.cli", "corpus", "extract", "--lang", lang, "--source",
                           str(path), "--out", str(out), "--workers", "1", "--quiet", "--wandb", "off"],
                          capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"mbert failed on {path}: {done.stderr.strip()}")
    pages = json.loads((out / "manifest.json").read_text())["languages"][lang]["pages_read"]
    return wall, cpu, pages


def run_wikiextractor(path: Path, out: Path) -> tuple[float, float, bool]:
    wall, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "wikiextractor.WikiExtractor", str(path), "-o", str(out),
                           "--processes", "1", "-q"], capture_output=True, text=True)
    return time.perf_counter() - wall, _children_cpu() - cpu, done.returncode == 0


def core_ours(path: Path, out: Path) -> tuple[float, int]:
    """(CPU seconds, pages) of our extraction worker on one dump, in this process."""
    from mbert.corpus.sources import detect, plan_units, with_siteinfo
    from mbert.corpus.worker import CleanOptions, process_unit
    wiki = source_language(path)
    source = with_siteinfo(detect(path), wiki, wiki)
    units = plan_units(wiki, [source], pieces=1, max_bytes=1 << 40)
    cpu, pages = time.process_time(), 0
    for number, unit in enumerate(units):
        pages += process_unit(unit, CleanOptions(wiki=wiki), out / f"unit-{number}.parquet")["pages"]
    return time.process_time() - cpu, pages


def core_wikiextractor(path: Path) -> tuple[float, int]:
    """(CPU seconds, articles extracted) of wikiextractor's page loop and cleaner, in this process."""
    import logging
    import wikiextractor.WikiExtractor as wx
    from wikiextractor.extract import Extractor
    logging.getLogger().setLevel(logging.ERROR)
    names = read_siteinfo(path).namespaces
    # what process_dump() sets from <siteinfo> before its page loop (templates are not expanded,
    # as with --no-templates; mbert does not expand them either)
    wx.templateNamespace = names.get(10) or "Template"
    kwargs = {"templatePrefix": wx.templateNamespace + ":",
              "knownNamespaces": {n for n in names.values() if n} | {"Template"}}
    cpu, pages = time.process_time(), 0
    with wx.decode_open(str(path)) as stream:
        for page_id, revid, title, page in wx.collect_pages(stream):
            Extractor(page_id, revid, "", title, page, **kwargs).extract(io.StringIO())
            pages += 1
    return time.process_time() - cpu, pages


def source_language(path: Path) -> str:
    lang = read_siteinfo(path).language or path.name.split("wiki", 1)[0]
    return lang if lang in {l.wiki for l in registry().values()} else "en"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dumps", nargs="*", type=Path, help="dumps (default: every dump of the data kit)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and dump; the best is kept")
    parser.add_argument("--scaling", type=int, nargs="*", metavar="N",
                        help="also time `corpus extract` of all the dumps at once with N workers (e.g. 1 2 4)")
    args = parser.parse_args()
    dumps = args.dumps or sorted(p for p in KIT.glob("*.bz2") if "-index" not in p.name)
    totals = {"mb": 0.0, "pages": 0, "ours_cpu": 0.0, "ours_wall": 0.0, "wx_cpu": 0.0, "wx_wall": 0.0}
    print(f"{'dump':<44} {'MB':>6} {'pages':>6} | {'ours MB/s':>9} {'pages/s':>8} | {'wx MB/s':>8} {'pages/s':>8} | ratio")
    for path in dumps:
        mb = path.stat().st_size / 1e6
        best_ours = best_wx = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                ours = run_ours(path, Path(tmp) / "out")
            with tempfile.TemporaryDirectory() as tmp:
                wx = run_wikiextractor(path, Path(tmp) / "out")
            best_ours = ours if best_ours is None or ours[1] < best_ours[1] else best_ours
            best_wx = wx if best_wx is None or wx[1] < best_wx[1] else best_wx
        pages = best_ours[2]
        ours_rate, wx_rate = mb / best_ours[1], mb / best_wx[1]
        status = "" if best_wx[2] else " (wikiextractor failed)"
        print(f"{path.name[:44]:<44} {mb:6.2f} {pages:6d} | {ours_rate:9.2f} {pages / best_ours[1]:8.0f} | "
              f"{wx_rate:8.2f} {pages / best_wx[1]:8.0f} | {ours_rate / wx_rate:5.2f}x{status}")
        if best_wx[2]:
            totals["mb"] += mb
            totals["pages"] += pages
            totals["ours_cpu"] += best_ours[1]
            totals["ours_wall"] += best_ours[0]
            totals["wx_cpu"] += best_wx[1]
            totals["wx_wall"] += best_wx[0]
    t = totals
    print(f"\nall dumps both tools read: {t['mb']:.2f} MB compressed, {t['pages']} pages")
    print(f"  mbert:         {t['mb'] / t['ours_cpu']:.2f} MB/s and {t['pages'] / t['ours_cpu']:.0f} pages/s per core "
          f"(CPU {t['ours_cpu']:.2f}s, wall {t['ours_wall']:.2f}s)")
    print(f"  wikiextractor: {t['mb'] / t['wx_cpu']:.2f} MB/s and {t['pages'] / t['wx_cpu']:.0f} pages/s per core "
          f"(CPU {t['wx_cpu']:.2f}s, wall {t['wx_wall']:.2f}s)")
    print(f"  ratio mbert / wikiextractor per core: {t['wx_cpu'] / t['ours_cpu']:.2f}x")

    print("\nsteady state, in-process, one core (no start-up):")
    print(f"{'dump':<44} {'MB':>6} | {'ours MB/s':>9} {'pages/s':>8} | {'wx MB/s':>8} {'pages/s':>8} | ratio")
    core = {"mb": 0.0, "ours": 0.0, "wx": 0.0, "ours_pages": 0, "wx_pages": 0}
    for path in dumps:
        mb = path.stat().st_size / 1e6
        best_ours = best_wx = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                ours = core_ours(path, Path(tmp))
            try:
                wx = core_wikiextractor(path)
            except Exception as exc:  # e.g. the UTF-16 dump: wikiextractor assumes UTF-8
                wx = None
                failure = type(exc).__name__
            best_ours = ours if best_ours is None or ours[0] < best_ours[0] else best_ours
            if wx is not None:
                best_wx = wx if best_wx is None or wx[0] < best_wx[0] else best_wx
        if best_wx is None:
            print(f"{path.name[:44]:<44} {mb:6.2f} | {mb / best_ours[0]:9.2f} {best_ours[1] / best_ours[0]:8.0f} | "
                  f"wikiextractor failed ({failure})")
            continue
        # pages/s counts every page of the dump for both tools (both read them all)
        print(f"{path.name[:44]:<44} {mb:6.2f} | {mb / best_ours[0]:9.2f} {best_ours[1] / best_ours[0]:8.0f} | "
              f"{mb / best_wx[0]:8.2f} {best_ours[1] / best_wx[0]:8.0f} | {best_wx[0] / best_ours[0]:5.2f}x")
        core["mb"] += mb
        core["ours"] += best_ours[0]
        core["wx"] += best_wx[0]
        core["ours_pages"] += best_ours[1]
        core["wx_pages"] += best_ours[1]
    print(f"  mbert:         {core['mb'] / core['ours']:.2f} MB/s, {core['ours_pages'] / core['ours']:.0f} pages/s per core")
    print(f"  wikiextractor: {core['mb'] / core['wx']:.2f} MB/s, {core['wx_pages'] / core['wx']:.0f} pages/s per core")
    print(f"  ratio mbert / wikiextractor per core (MB/s): {core['wx'] / core['ours']:.2f}x")
    if args.scaling:
        scaling(dumps, args.scaling)


def scaling(dumps: list[Path], worker_counts: list[int]) -> None:
    """Wall time of one multi-language extraction with 1..N workers (units of ~0.1 MB compressed)."""
    from mbert.corpus.extract import extract_corpus
    from mbert.corpus.settings import CorpusSettings
    from mbert.progress import set_quiet
    set_quiet(True)
    sources: dict[str, list[str]] = {}
    for path in dumps:
        sources.setdefault(source_language(path), []).append(str(path))
    mb = sum(p.stat().st_size for p in dumps) / 1e6
    print(f"\nscaling: {len(dumps)} dumps, {len(sources)} languages, {mb:.2f} MB compressed, one run each")
    base = None
    for workers in worker_counts:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            extract_corpus(CorpusSettings(sources=sources, workers=workers, chunk_mb=0.1), Path(tmp) / "out")
            seconds = time.perf_counter() - started
        base = base or seconds
        print(f"  workers={workers:<3} wall {seconds:6.2f}s  {mb / seconds:6.2f} MB/s  "
              f"speed-up vs workers={worker_counts[0]}: {base / seconds:5.2f}x")


if __name__ == "__main__":
    main()
