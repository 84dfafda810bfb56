"""Process pools whose workers end with the process that started them.

A `ProcessPoolExecutor`'s workers wait on their call queue, and each holds both ends of its
pipe: when the process that started them is killed (SIGKILL, the OOM killer, a container's
stop), no end-of-file reaches them and they wait forever, each with its interpreter and
DuckDB (about 100 MB) and, in the middle of a task, its CPU. Each worker here watches its
parent and exits within `PARENT_POLL_SECONDS` once it has gone (its parent id changes when
the system gives it another). Ctrl-C at a terminal reaches every process of the run; a
worker does with it what its parent does (`interrupts.stops_at_once`, read when the pool is
made): under `healthpipe run` it ends at once and quietly (the parent stops the run and says
so in one line; before, every idle worker printed the traceback of its interrupted queue
read), under `healthpipe watch` it ignores it (the watcher finishes the step in hand, its
workers' part included, then stops). The chunked ingest's pool, the analysis groups' pool and
the run's chart worker are made here.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from healthpipe import interrupts

T = TypeVar("T")
PARENT_POLL_SECONDS = 0.5
EXIT_ORPHANED = 70  # EX_SOFTWARE: nobody reads it (the parent is gone), `ps` and logs may


def _interrupted(signum: int, frame: object) -> None:
    os._exit(interrupts.EXIT_INTERRUPTED)


def _exit_with_parent(parent: int, interrupt_at_once: bool) -> None:
    """The pool's initializer: a daemon thread that ends the worker once `parent` is no
    longer its parent (what was running dies with it, as in the parent's own SIGKILL), and
    what a SIGINT does: end the worker at once, or nothing. The worker started with SIGINT
    blocked (`_WorkerPool.submit`); one that came meanwhile is delivered now."""
    signal.signal(signal.SIGINT, _interrupted if interrupt_at_once else signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class _WorkerPool(ProcessPoolExecutor):
    """Starts its workers (in `submit`, as they are needed) with SIGINT blocked, which they
    keep across exec: a Ctrl-C in a worker's first moments, before its initializer has said
    what SIGINT does, waits for it instead of ending it with a KeyboardInterrupt traceback
    (and, under `healthpipe watch`, a broken pool). This thread's own SIGINT waits as long as
    the submit, then is delivered."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if not hasattr(signal, "pthread_sigmask"):
            return super().submit(fn, *args, **kwargs)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def worker_pool(processes: int, context: BaseContext) -> ProcessPoolExecutor:
    """`processes` workers started with `context` (spawn or fork), each ending with this
    process."""
    return _WorkerPool(
        processes,
        mp_context=context,
        initializer=_exit_with_parent,
        initargs=(os.getpid(), interrupts.stops_at_once()),
    )
