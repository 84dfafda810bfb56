"""Progress of the work in hand, for whoever displays it (the CLI on a terminal).

A port-free hook: stages call `step("validate")` as they move on, `dataops` registers each
DuckDB connection with `track(con)`; both do nothing unless a display is `listening`. The
display polls `query_progress()` (percent of the running query, -1 when idle) of the tracked
connection from its own thread, which DuckDB allows while the query runs.

No I/O, no health data: a stage name, a file name and numbers only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Protocol


class Progressive(Protocol):
    """What a tracked engine connection offers (DuckDB's)."""

    def query_progress(self) -> float: ...

    def execute(self, query: str) -> object: ...


@dataclass
class Listener:
    """The display's side: `on_step(stage)` is called in the worker's thread; `percent()`
    may be called from any thread."""

    on_step: Callable[[str], None]
    _con: Any = field(default=None, repr=False)
    _lock: Lock = field(default_factory=Lock, repr=False)

    def percent(self) -> float | None:
        with self._lock:
            con = self._con
        if con is None:
            return None
        try:
            value = float(con.query_progress())
        except Exception:  # closed or between queries: no figure this time
            return None
        return value if value >= 0 else None

    def _track(self, con: Progressive | None) -> None:
        with self._lock:
            self._con = con


_current: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    _current.append(listener)
    try:
        yield listener
    finally:
        _current.remove(listener)


def step(stage: str) -> None:
    """The work in hand moves on to `stage` (hash, validate, analyze, report, send)."""
    for listener in _current:
        listener.on_step(stage)


def track(con: Progressive) -> None:
    """`con` runs the next queries: when a display listens, DuckDB counts its progress
    (without printing a bar of its own)."""
    if not _current:
        return
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    for listener in _current:
        listener._track(con)
