"""Process pools whose workers end with the process that started them.

A `ProcessPoolExecutor`'s workers wait on their call queue, and each holds both ends of its
pipe: when the process that started them is killed (SIGKILL, the OOM killer, a container's
stop), no end-of-file reaches them and they wait forever, each with its interpreter and
DuckDB (about 100 MB) and, in the middle of a task, its CPU. Each worker here watches its
parent and exits within `PARENT_POLL_SECONDS` once it has gone (its parent id changes when
the system gives it another). A worker's SIGINT (Ctrl-C at a terminal reaches every process
of the run) ends it at once and quietly: the parent, which gets the same SIGINT, stops the
run and says so in one line; without this every idle worker printed the traceback of its
interrupted queue read. The chunked ingest's pool, the analysis groups' pool and the run's
chart worker are made here.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext

PARENT_POLL_SECONDS = 0.5
EXIT_ORPHANED = 70  # EX_SOFTWARE: nobody reads it (the parent is gone), `ps` and logs may
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C ended


def _interrupted(signum: int, frame: object) -> None:
    os._exit(EXIT_INTERRUPTED)


def _exit_with_parent(parent: int) -> None:
    """The pool's initializer: a daemon thread that ends the worker once `parent` is no
    longer its parent (what was running dies with it, as in the parent's own SIGKILL), and
    a SIGINT handler that ends it at once."""
    signal.signal(signal.SIGINT, _interrupted)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker_pool(processes: int, context: BaseContext) -> ProcessPoolExecutor:
    """`processes` workers started with `context` (spawn or fork), each ending with this
    process."""
    return ProcessPoolExecutor(
        processes,
        mp_context=context,
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
