"""Token store: two workers against one, and against what two cores can give at all.

On a run folder of `bench/scaling.py` (its `mixture` and `vocab`), with both cores idle, builds the store
three ways, each stage process measured like `scaling.py` (wall, CPU of it and its workers, peak RSS):
  one   - one worker, pinned to core 0 (`taskset -c 0`: the tokenizer's Rust threads cannot use core 1)
  two   - two workers, unpinned
  pair  - two independent one-worker builds at once, pinned to cores 0 and 1: the ceiling for two
          tokenizers on this machine (shared caches and memory bandwidth), whatever the code does
and checks that all give the same tokens; `--rounds` repeats the three (median and every figure printed).

    python bench/store_workers.py --run /work/scale-runs/w128/run-x1-w2 --out /tmp/store-workers
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import measure  # noqa: E402

SCALING = Path(__file__).resolve().parent / "scaling.py"


def build(name: str, out: Path, run: Path, workers: int, core: int | None, mixture_bytes: int) -> dict:
    """One store build in its own folder (the run's mixture and vocabulary linked in)."""
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for part in ("mixture", "vocab"):
        (folder / part).symlink_to(run.resolve() / part)
    argv = [sys.executable, str(SCALING), "--prepare", "store", "--run", str(folder), "--workers", str(workers)]
    if core is not None:
        argv = ["taskset", "-c", str(core)] + argv
    return measure(name, argv, folder / "store", mixture_bytes, out / "store_workers.log")


def one_round(out: Path, run: Path, mixture_bytes: int) -> dict:
    rows = {"one": build("one", out, run, 1, 0, mixture_bytes), "two": build("two", out, run, 2, None, mixture_bytes)}
    with ThreadPoolExecutor(2) as pool:  # the two pinned builds at the same time
        rows["pair0"], rows["pair1"] = pool.map(lambda c: build(f"pair{c}", out, run, 1, c, mixture_bytes), (0, 1))
    for name in ("two", "pair0", "pair1"):
        if not filecmp.cmp(out / "one" / "store" / "tokens.bin", out / name / "store" / "tokens.bin", shallow=False):
            raise SystemExit(f"store_workers: the {name} store differs from the one-worker store")
    one = rows["one"]["wall_s"]
    return {"rows": rows, "speedup_two_workers": round(one / rows["two"]["wall_s"], 3),
            "ceiling_two_processes": round(2 * one / max(rows["pair0"]["wall_s"], rows["pair1"]["wall_s"]), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a bench/scaling.py run folder (mixture, vocab)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three builds (a shared VM's speed drifts)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mixture_bytes = sum(p.stat().st_size for p in (args.run / "mixture").rglob("*.parquet"))  # Parquet bytes
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(one_round(args.out, args.run, mixture_bytes))
        (args.out / "store_workers.json").write_text(json.dumps(rounds, indent=1), encoding="utf-8")
        for name, row in rounds[-1]["rows"].items():
            print(f"round {number} {name:6s} wall {row['wall_s']:8.2f} s  CPU {row['cpu_s']:8.2f} s  "
                  f"peak RSS {row['peak_rss_mb']} MB", flush=True)
    speedups = sorted(r["speedup_two_workers"] for r in rounds)
    ceilings = sorted(r["ceiling_two_processes"] for r in rounds)
    print(f"two workers against one: {speedups} (median {statistics.median(speedups):.2f}x); two independent "
          f"processes at once, the ceiling: {ceilings} (median {statistics.median(ceilings):.2f}x); "
          f"same tokens in every store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
