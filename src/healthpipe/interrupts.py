"""Ctrl-C during a pipeline run: remembered as well as raised.

Native code may turn the KeyboardInterrupt of a SIGINT into an error of its own: DuckDB
answers a SIGINT during a statement with its InterruptException, or with `RuntimeError:
Query interrupted` during a COPY, both Exceptions. A stage failure of that kind was counted
in `StageFailures` and retried by the dispatcher, so `healthpipe run` carried on after
Ctrl-C. While `noticed()` is in force, a SIGINT sets a flag before it raises, and
`interrupted(exc)` tells a Ctrl-C from a failure whatever the exception became.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process that Ctrl-C ended
_seen = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _seen.set()
    signal.default_int_handler(signum, frame)  # KeyboardInterrupt, as without this handler


@contextmanager
def noticed() -> Iterator[None]:
    """Remember a Ctrl-C while the block runs. Only in the main thread and only over
    Python's default handler: `healthpipe watch` installs its own (Ctrl-C there finishes
    the step in hand), and a caller's own handler is left as it is."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _seen.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _seen.clear()


def interrupted(exc: BaseException | None = None) -> bool:
    """Whether a Ctrl-C was seen under `noticed()`, or `exc` (or an exception it was raised
    from or during) is a KeyboardInterrupt."""
    if _seen.is_set():
        return True
    seen: set[int] = set()
    current = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def stops_at_once() -> bool:
    """Whether Ctrl-C stops this process at once (Python's default handler, or `noticed()`'s)
    rather than at the pace of a handler of its own (`healthpipe watch` finishes the step in
    hand): what the workers this process starts should do with the same Ctrl-C."""
    return signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _on_sigint)
