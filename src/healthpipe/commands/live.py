"""Progress on a terminal (stderr only): each file's stage, rows and rows/s while DuckDB works,
and a summary line per finished file that stays on screen. Never used for `--json` or when
stderr is not a terminal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from healthpipe import progress
from healthpipe.orchestration.runs import FileOutcome

POLL_SECONDS = 0.2
SAMPLE_BYTES = 1 << 16


def estimate_rows(path: Path) -> int:
    """Data rows in a file, estimated from its size and the lines of its first 64 KiB."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError:
        return 0
    if path.name.lower().endswith(".gz"):
        return 0  # compressed: no honest estimate from the size
    lines = sample.count(b"\n")
    if lines <= 1 or len(sample) >= size:
        return max(lines - 1, 0)
    return int(size / (len(sample) / lines))


class RunDisplay:
    """`with RunDisplay(console, files) as display: run_files(..., on_start=display.start,
    on_file=display.done)`."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.listener = progress.Listener(on_step=self.step)
        self.task: TaskID | None = None
        self.name = ""
        self.stage = ""
        self.rows_estimate = 0
        self.stage_started = time.monotonic()
        self.index = 0
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._listening = progress.listening(self.listener)

    def __enter__(self) -> RunDisplay:
        self.bar.__enter__()
        self._listening.__enter__()
        self._poller.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._poller.join()
        self._listening.__exit__(kind, value, tb)
        self.bar.__exit__(kind, value, tb)

    def start(self, source: Path) -> None:
        self.index += 1
        self.name = source.name
        self.rows_estimate = estimate_rows(source)
        label = f"[{self.index}/{self.total}] {escape(self.name)}"
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(label, total=None, detail="")
        self.step("start")

    def step(self, stage: str) -> None:
        self.stage = stage
        self.stage_started = time.monotonic()
        self._show(None)

    def done(self, outcome: FileOutcome) -> None:
        rows = outcome.rows
        self.bar.console.print(
            f"{escape(self.name)}: {outcome.status}, {rows['input']:,} rows in, "
            f"{rows['valid']:,} valid, {rows['rejected']:,} rejected, "
            f"{outcome.anomalies:,} findings",
            highlight=False,
            soft_wrap=True,
        )
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None

    def _show(self, percent: float | None) -> None:
        if self.task is None:
            return
        detail = self.stage
        if percent is not None:
            detail += f" {percent:.0f}%"
            if self.rows_estimate and self.stage in ("validate", "analyze"):
                rows = int(self.rows_estimate * percent / 100)
                seconds = max(time.monotonic() - self.stage_started, 1e-3)
                detail += f", ~{rows:,} rows, {rows / seconds:,.0f} rows/s"
        self.bar.update(self.task, detail=escape(detail))

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._show(self.listener.percent())


@contextmanager
def rows_written(console: Console, rows: int) -> Iterator[Callable[[], None]]:
    """`generate` on a terminal: rows written so far, while DuckDB writes them."""
    listener = progress.Listener(on_step=lambda _stage: None)
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    task = bar.add_task("generating")
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            percent = listener.percent()
            if percent is not None:
                bar.update(task, description=f"{int(rows * percent / 100):,} of {rows:,} rows")

    poller = threading.Thread(target=poll, daemon=True)
    with bar, progress.listening(listener):
        poller.start()
        try:
            yield lambda: None
        finally:
            stop.set()
            poller.join()
