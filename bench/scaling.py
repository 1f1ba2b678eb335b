"""Scaling runs of the data path: corpus extract -> sample -> vocab -> token store -> instance index ->
50 pretraining steps (tiny model), on dumps from `bench/make_dumps.py` at several size factors.

Every stage runs as its own process (the CLI, or for the token store and the instance index the
pretraining code's own `inputs.prepare_token_store` / `prepare_instances`, which `mbert pretrain` then finds
done), so its figures are its own: wall time, CPU time (user + sys of it and its workers), peak RSS (of
its largest process, from `wait4`), disk (its output folder at the end, and the largest it was while
the stage ran, polled every second), and throughput per second of wall time and per CPU-second.

    python bench/scaling.py --out /work/scale-runs/scaling --size-mb 8 --factors 1 4
    python bench/scaling.py --out DIR --size-mb 8 --factors 1 --workers 2     # 2 workers per stage
    python bench/scaling.py --disk RUN     # the disk budget of a run folder laid out as below

Dumps go to OUT/dumps-xF (made once, reused), runs to OUT/run-xF-wW (clean/, mixture/, vocab/, store/,
pretrain/data/), figures to OUT/scaling.json (merged over calls) and Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VOCAB_SIZE = 30_000
STEPS = 50


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # a staging file renamed while we looked
                pass
    return total


def measure(name: str, argv: list[str], output: Path, input_bytes: int, log: Path) -> dict:
    """Run one stage process; its wall and CPU time, peak RSS and disk."""
    peak_disk = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak_disk
        while not done.wait(1.0):
            peak_disk = max(peak_disk, folder_bytes(output))

    watcher = threading.Thread(target=poll, daemon=True)
    started = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    if process.returncode:
        raise SystemExit(f"scaling: stage {name} failed (exit {process.returncode}); see {log}")
    final_disk = folder_bytes(output)
    cpu = usage.ru_utime + usage.ru_stime
    return {"stage": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "disk_mb": round(final_disk / 1e6, 2),
            "peak_disk_mb": round(max(peak_disk, final_disk) / 1e6, 2), "input_mb": round(input_bytes / 1e6, 3),
            "mb_per_s": round(input_bytes / 1e6 / wall, 3) if wall else None,
            "mb_per_cpu_s": round(input_bytes / 1e6 / cpu, 3) if cpu else None}


def _pretrain_argv(run: Path, workers: int) -> list[str]:
    return ["pretrain", "--corpus", str(run / "mixture"), "--vocab", str(run / "vocab"),
            "--out", str(run / "pretrain"), "--wandb", "off", "--set", "pretrain.model=tiny",
            "--set", f"pretrain.steps={STEPS}", "--set", f"pretrain.token_store={run / 'store'}",
            "--set", f"pretrain.tokenize_workers={workers}", "--set", "pretrain.device=cpu"]


def prepare(part: str, run: Path, workers: int) -> None:
    """In a stage process: build the token store, or the instance index, exactly as `mbert pretrain`
    would (same settings, same folders), so that the pretraining stage then finds it done."""
    from mbert.cli import build_parser
    from mbert.corpus.layout import find_corpus
    from mbert.pretrain.distributed import Distributed
    from mbert.pretrain.inputs import input_fingerprint, load_tokenizer, prepare_instances, prepare_token_store
    from mbert.pretrain.settings import PretrainSettings
    from mbert.recipe import stage_settings

    args = build_parser().parse_args(_pretrain_argv(run, workers))
    settings, _ = stage_settings(args, "pretrain", PretrainSettings)
    dist = Distributed(cuda=False)
    try:
        corpus, vocab = find_corpus(run / "mixture"), run / "vocab"
        tokenizer = load_tokenizer(vocab)
        inputs = input_fingerprint(corpus, tokenizer)
        # where `mbert pretrain` keeps it (inputs.prepare_data): pretrain.token_store, set by _pretrain_argv
        store = prepare_token_store(corpus, tokenizer, Path(settings.token_store), inputs,
                                    settings.tokenize_workers, dist)
        if part == "instances":
            prepare_instances(store, run / "pretrain" / "data", inputs, settings, dist)
    finally:
        dist.close()


def run_factor(out: Path, size_mb: float, factor: int, workers: int) -> dict:
    py = sys.executable
    dumps = out / f"dumps-x{factor}"
    if not (dumps / "dumps.json").is_file():
        subprocess.run([py, str(REPO / "bench" / "make_dumps.py"), "--out", str(dumps),
                        "--size-mb", str(size_mb * factor), "--workers", str(workers)], check=True)
    made = json.loads((dumps / "dumps.json").read_text())["languages"]
    run = out / f"run-x{factor}-w{workers}"
    if run.exists():
        raise SystemExit(f"scaling: {run} exists; remove it to measure again")
    run.mkdir(parents=True)
    log = run / "stages.log"
    mbert = [py, "-m", "mbert", "--quiet"]
    stages = []

    def stage(name: str, argv: list[str], output: Path, input_bytes: int) -> None:
        stages.append(measure(name, argv, output, input_bytes, log))
        print(f"  x{factor} w{workers} {name}: {json.dumps(stages[-1])}", flush=True)

    compressed = sum(m["bytes"] for m in made)
    stage("extract", mbert + ["corpus", "extract", "--recipe", str(dumps / "recipe.toml"), "--out",
                              str(run / "clean"), "--workers", str(workers), "--wandb", "off"],
          run / "clean", compressed)
    clean = json.loads((run / "clean" / "manifest.json").read_text())
    text_bytes = sum(e["bytes"] for e in clean["languages"].values())
    stage("sample", mbert + ["corpus", "sample", "--clean", str(run / "clean"), "--out", str(run / "mixture"),
                             "--wandb", "off"], run / "mixture", text_bytes)
    mixture = json.loads((run / "mixture" / "manifest.json").read_text())
    mixture_bytes = int(sum(clean["languages"][lang]["bytes"] * row["effective_ratio"]  # text, not Parquet
                            for lang, row in mixture["languages"].items()))
    stage("vocab", mbert + ["vocab", "train", "--corpus", str(run / "mixture"), "--out", str(run / "vocab"),
                            "--size", str(VOCAB_SIZE), "--wandb", "off"], run / "vocab", mixture_bytes)
    for part, output in (("store", run / "store"), ("instances", run / "pretrain" / "data")):
        stage("token store" if part == "store" else "instance index",
              [py, str(Path(__file__).resolve()), "--prepare", part, "--run", str(run), "--workers", str(workers)],
              output, mixture_bytes)
    made_store = (run / "store" / "store.json").stat().st_mtime_ns  # pretraining must find it, not redo it
    stage("pretrain 50 steps", mbert + _pretrain_argv(run, workers), run / "pretrain", mixture_bytes)
    if (run / "store" / "store.json").stat().st_mtime_ns != made_store:
        raise SystemExit(f"scaling: pretraining rebuilt the token store in {run / 'store'}: the prepared one "
                         f"was not where it reads it, so its figures include tokenisation")
    store = json.loads((run / "store" / "store.json").read_text())
    disk = disk_budget(run, mixture)
    print(f"  x{factor} w{workers} disk: {json.dumps(disk)}", flush=True)
    return {"factor": factor, "workers": workers, "size_mb": size_mb * factor, "languages": len(made),
            "dump_mb": round(compressed / 1e6, 2), "pages": sum(m["pages"] for m in made),
            "clean_text_mb": round(text_bytes / 1e6, 2),
            "documents": clean["totals"].get("documents"), "mixture_text_mb": round(mixture_bytes / 1e6, 2),
            "mixture_parquet_mb": round(folder_bytes(run / "mixture") / 1e6, 2),
            "mixture_documents": mixture["totals"]["documents"], "tokens": store["n_tokens"],
            "disk": disk, "stages": stages}


def disk_budget(run: Path, mixture: dict) -> dict:
    """What the data path keeps on disk, folder by folder, and how much of the mixture is repeats: the
    figures behind the decision to keep the mixture a copy of the sampled text (README, "Disk")."""
    folders = {"clean_parquet_mb": run / "clean", "mixture_parquet_mb": run / "mixture",
               "token_store_mb": run / "store", "instance_index_mb": run / "pretrain" / "data"}
    sizes = {key: folder_bytes(path) for key, path in folders.items()}
    total = sum(sizes.values())
    achieved = sum(row["achieved"] for row in mixture["languages"].values())
    repeated = sum(max(0.0, row["achieved"] - row["size"]) for row in mixture["languages"].values())
    return {key: round(size / 1e6, 2) for key, size in sizes.items()} | {
                    "total_mb": round(total / 1e6, 2),
                    "mixture_share": round(sizes["mixture_parquet_mb"] / total, 4) if total else None,
                    # text that is a second (third, ...) copy of a document: an index over the clean corpus
                    # would not store it, and the token store holds its ids once per copy
                    "mixture_repeat_share": round(repeated / achieved, 4) if achieved else None}


def table(results: list[dict]) -> str:
    lines = ["| size | stage | input MB | wall s | CPU s | MB per CPU-s | peak RSS MB | disk MB (peak) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        label = f"×{r['factor']}, {r['workers']} worker(s), {r['dump_mb']} MB dumps"
        for s in r["stages"]:
            lines.append(f"| {label} | {s['stage']} | {s['input_mb']} | {s['wall_s']} | {s['cpu_s']} | "
                         f"{s['mb_per_cpu_s']} | {s['peak_rss_mb']} | {s['disk_mb']} ({s['peak_disk_mb']}) |")
    lines += ["", "| size | clean MB | mixture MB | token store MB | instance index MB | mixture share of disk | "
              "repeats in the mixture |", "|---|---|---|---|---|---|---|"]
    for r in results:
        if "disk" in r:  # runs measured before the disk budget was recorded have none
            d = r["disk"]
            lines.append(f"| ×{r['factor']}, {r['dump_mb']} MB dumps | {d['clean_parquet_mb']} | "
                         f"{d['mixture_parquet_mb']} | {d['token_store_mb']} | {d['instance_index_mb']} | "
                         f"{d['mixture_share']:.1%} | {d['mixture_repeat_share']:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for dumps, runs and scaling.json")
    parser.add_argument("--size-mb", type=float, default=8.0, help="compressed MB of dumps at factor 1")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workers", type=int, default=1, help="workers of every parallel stage")
    parser.add_argument("--prepare", choices=["store", "instances"], help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--disk", type=Path, metavar="RUN", help="print the disk budget of a run folder and stop")
    args = parser.parse_args(argv)
    if args.disk:
        mixture = json.loads((args.disk / "mixture" / "manifest.json").read_text())
        print(json.dumps(disk_budget(args.disk, mixture), indent=1))
        return 0
    if args.prepare:
        prepare(args.prepare, args.run, args.workers)
        return 0
    if args.out is None:
        parser.error("--out is required")
    args.out.mkdir(parents=True, exist_ok=True)
    figures = args.out / "scaling.json"
    results = json.loads(figures.read_text()) if figures.is_file() else []
    for factor in args.factors:
        result = run_factor(args.out, args.size_mb, factor, args.workers)
        results = [r for r in results if (r["factor"], r["workers"]) != (factor, args.workers)] + [result]
        figures.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(sorted(results, key=lambda r: (r["workers"], r["factor"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
