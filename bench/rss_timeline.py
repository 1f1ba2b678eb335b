"""Where a stage's memory goes: run it in this process and print a line whenever its RSS moves.

Each line gives the time, the RSS, pyarrow's allocated bytes and the innermost mbert / pyarrow frames
of the main thread at that moment, so a growth can be tied to the code that made it (the attribution
of `corpus extract`'s and the token store's memory in the README's scaling section):

    python bench/rss_timeline.py -m mbert --quiet corpus extract --lang en --source DUMP --out OUT --workers 1
    python bench/rss_timeline.py bench/scaling.py --prepare store --run RUN --workers 1

The last line splits the highest RSS seen into anonymous memory (the process's own) and file-backed
pages (shared libraries, memory-mapped token store and index: page cache the kernel can drop), from
`/proc/self/status`:

    python bench/rss_timeline.py -m mbert --quiet pretrain --corpus RUN/mixture --vocab RUN/vocab ...

The sampler thread itself adds a little memory; compare peaks with `/usr/bin/time -v` without it.
"""

from __future__ import annotations

import os
import resource
import runpy
import sys
import threading
import time
import traceback

STEP_MB = 15      # print when RSS moved this much since the last line
INTERVAL_S = 0.1


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


_peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}  # kB, at the highest VmRSS sampled


def _note_peak() -> None:
    with open("/proc/self/status") as handle:
        now = {line.split(":")[0]: int(line.split()[1]) for line in handle if line.split(":")[0] in _peak}
    if now.get("VmRSS", 0) >= _peak["VmRSS"]:
        _peak.update(now)


def _where(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    frames = [f for f in traceback.extract_stack(frame) if "mbert" in f.filename or "pyarrow" in f.filename]
    return " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in reversed(frames[-4:]))


def _watch(main_thread: int, started: float) -> None:
    last = 0.0
    while True:
        rss = _rss_mb()
        _note_peak()
        if abs(rss - last) >= STEP_MB:
            allocated = getattr(sys.modules.get("pyarrow"), "total_allocated_bytes", None)  # once imported
            pool = f"{allocated() / 1e6:5.0f}" if allocated else "    -"
            print(f"{time.perf_counter() - started:7.1f}s rss {rss:6.0f} MB arrow {pool} MB | "
                  f"{_where(main_thread)}", file=sys.stderr, flush=True)
            last = rss
        time.sleep(INTERVAL_S)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    if sys.argv[1] == "-m":
        target, run = sys.argv[2], runpy.run_module
        sys.argv = [target, *sys.argv[3:]]
    else:
        target, run = sys.argv[1], runpy.run_path
        sys.argv = sys.argv[1:]
    threading.Thread(target=_watch, args=(threading.get_ident(), time.perf_counter()), daemon=True).start()
    code = 0
    try:
        if run is runpy.run_module:
            run(target, run_name="__main__", alter_sys=True)
        else:
            run(target, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB; at the highest sample "
          f"{_peak['VmRSS'] / 1e3:.0f} MB = anonymous {_peak['RssAnon'] / 1e3:.0f} MB + file-backed "
          f"{_peak['RssFile'] / 1e3:.0f} MB", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
