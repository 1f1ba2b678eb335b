"""Process pools whose workers never outlive the command that started them.

Pool workers are separate processes: when the parent is killed (kill -9, SIGTERM, the OOM killer)
they would go on running as orphans, each holding its memory. On Linux every worker asks the kernel
to kill it when its parent dies (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the parent."""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import os
import signal
import sys
import threading
import time
from multiprocessing.context import BaseContext
from typing import Any, Callable

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def process_pool(workers: int, *, mp_context: BaseContext | None = None,
                 initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> cf.ProcessPoolExecutor:
    """A `ProcessPoolExecutor` whose workers die with this process."""
    return cf.ProcessPoolExecutor(workers, mp_context=mp_context, initializer=_start_worker,
                                  initargs=(os.getpid(), initializer, initargs))


def _start_worker(parent: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int) -> None:
    """End this process as soon as process `parent` is gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it died before the request was in place
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="mbert-parent-watch").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
