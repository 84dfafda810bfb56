"""Runs `healthpipe ARGS` with a crash point: SIGKILL on the Nth call of a real method.

    python rel_crash_entry.py [--kill MODULE:Class.method --nth N --when before|after]
                              [--duckdb MODULE --nth N] [--slow MODULE:Class.method=SECONDS]
                              [--interrupt MODULE:Class.method --nth N --delay SECONDS]
                              [--interrupt-duckdb MODULE --nth N]
                              -- healthpipe-args...

`--kill` wraps a method of a real adapter or stage dependency: on its Nth call the process
kills itself with SIGKILL (before the call, or right after it returned), like a power cut
or an OOM kill. `--duckdb MODULE` wraps the `connect` that MODULE imported from the engine:
on the Nth `execute` of its connections a thread SIGKILLs the process while DuckDB runs the
statement. `--slow` makes a method sleep first (to force two processes to overlap);
`--fail` makes a method raise PermanentError on every call. `--interrupt` and
`--interrupt-duckdb` press Ctrl-C instead of killing: the process becomes the leader of a
process group of its own (as a shell makes a command it starts), and SIGINT goes to that group,
so the run and every worker it started get it, as from a terminal (`--delay` seconds after
the Nth call of the method starts; 20 ms into the Nth DuckDB statement).
Nothing here is part of healthpipe: the production code has no fault points.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _resolve(spec: str) -> tuple[Any, str]:
    module_name, _, attr = spec.partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _on_nth_call(spec: str, nth: int, act: Callable[[], None], when: str) -> None:
    """`act()` on the Nth call of the method `spec`, before it runs or after it returned."""
    owner, name = _resolve(spec)
    original = getattr(owner, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth and when == "before":
            act()
        result = original(*args, **kwargs)
        if calls == nth and when == "after":
            act()
        return result

    setattr(owner, name, wrapper)


def install_kill(spec: str, nth: int, when: str) -> None:
    _on_nth_call(spec, nth, _die, when)


class _KillingConnection:
    """A DuckDB connection whose Nth execute is killed mid-statement."""

    def __init__(self, con: Any, counter: list[int], nth: int) -> None:
        self._con, self._counter, self._nth = con, counter, nth

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._counter[0] += 1
        if self._counter[0] == self._nth:
            threading.Thread(target=lambda: (time.sleep(0.02), _die()), daemon=True).start()
        return self._con.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def install_duckdb_kill(
    module_name: str, nth: int, wrap: type[_KillingConnection] = _KillingConnection
) -> None:
    """MODULE's connections become `wrap`s, counting executes together."""
    module = importlib.import_module(module_name)
    original = module.connect
    counter = [0]

    def connect(*args: Any, **kwargs: Any) -> Any:
        return wrap(original(*args, **kwargs), counter, nth)

    module.connect = connect


def _press_ctrl_c(delay: float) -> None:
    def press() -> None:
        time.sleep(delay)
        os.killpg(os.getpgid(0), signal.SIGINT)

    threading.Thread(target=press, daemon=True).start()


def install_interrupt(spec: str, nth: int, delay: float) -> None:
    _on_nth_call(spec, nth, lambda: _press_ctrl_c(delay), "before")


class _InterruptingConnection(_KillingConnection):
    """A DuckDB connection whose Nth execute gets Ctrl-C 20 ms after it starts."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._counter[0] += 1
        if self._counter[0] == self._nth:
            _press_ctrl_c(0.02)
        return self._con.execute(*args, **kwargs)


def install_slow(spec: str) -> None:
    target, _, seconds = spec.rpartition("=")
    owner, name = _resolve(target)
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        time.sleep(float(seconds))
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def install_fail(spec: str) -> None:
    from healthpipe.errors import PermanentError

    owner, name = _resolve(spec)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raise PermanentError(f"injected permanent fault in {spec}")

    setattr(owner, name, wrapper)


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill")
    parser.add_argument("--duckdb")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--when", choices=("before", "after"), default="before")
    parser.add_argument("--slow", action="append", default=[])
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--interrupt")
    parser.add_argument("--interrupt-duckdb")
    parser.add_argument("--delay", type=float, default=0.0)
    opts = parser.parse_args(argv[:split])
    if opts.interrupt or opts.interrupt_duckdb:
        os.setpgid(0, 0)  # Ctrl-C reaches this run and its workers, not the test's processes
    if opts.interrupt:
        install_interrupt(opts.interrupt, opts.nth, opts.delay)
    if opts.interrupt_duckdb:
        install_duckdb_kill(opts.interrupt_duckdb, opts.nth, _InterruptingConnection)
    if opts.kill:
        install_kill(opts.kill, opts.nth, opts.when)
    if opts.duckdb:
        install_duckdb_kill(opts.duckdb, opts.nth)
    for spec in opts.slow:
        install_slow(spec)
    for spec in opts.fail:
        install_fail(spec)
    from healthpipe.cli import main as cli_main

    sys.argv = ["healthpipe", *argv[split + 1 :]]
    cli_main()


if __name__ == "__main__":
    main()
