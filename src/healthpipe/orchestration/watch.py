"""`healthpipe watch`: the local twin of the S3 trigger.

A watchdog observer reports files appearing under the workspace bucket's `raw/`. A file is
published as an S3-shaped "Object Created" event only once its size and modification time
have stopped changing for `settle_seconds` (a copy still in progress is not processed
half-written). One loop thread then runs the outbox deliveries exactly as `healthpipe run`
does, so retries, dead letters and idempotency are the same.

On start the watcher first finishes what the outbox still holds (a crashed or stopped watcher
or run leaves pending or running deliveries; a dead process's claims are taken over at once),
then queues every file in `raw/` that no ingest has seen yet (same key and version). `stop()`
(Ctrl-C, SIGTERM) ends the loop after the delivery in hand; nothing is lost: the next start
resumes from the outbox.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from healthpipe import constants as c
from healthpipe.bootstrap import LocalRuntime
from healthpipe.domain.identity import correlation_id_for
from healthpipe.orchestration.local import Dispatcher
from healthpipe.orchestration.runs import FileOutcome, collect, upload_event
from healthpipe.stages.base import log_event

logger = logging.getLogger("healthpipe.watch")
OPEN_STATUSES = ("pending", "running")
# names a copy in progress has (browsers, rsync --partial, editors): not uploads yet
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp", "~")


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class SettleTracker:
    """Files wait here until their size and mtime have not changed for `settle_seconds`."""

    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._seen: dict[Path, _Seen | None] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path) -> None:
        """Note that `path` appeared or changed (called from the observer's thread)."""
        with self._lock:
            self._seen[path] = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def ready(self, now: float) -> list[Path]:
        """The files that have been still long enough; they leave the tracker."""
        done: list[Path] = []
        with self._lock:
            for path, seen in list(self._seen.items()):
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    del self._seen[path]  # renamed or deleted before it settled
                    continue
                current = (stat.st_size, stat.st_mtime_ns)
                if seen is None or (seen.size, seen.mtime_ns) != current:
                    self._seen[path] = _Seen(stat.st_size, stat.st_mtime_ns, now)
                elif now - seen.since >= self.settle_seconds:
                    del self._seen[path]
                    done.append(path)
        return sorted(done)


class _RawHandler(FileSystemEventHandler):
    def __init__(self, watcher: RawWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        self.watcher.offer(Path(path if isinstance(path, str) else path.decode()))


@dataclass(frozen=True)
class _Submitted:
    event_id: str
    correlation_id: str
    path: Path


class RawWatcher:
    """Watches `<bucket>/raw/` and drives each settled file through the pipeline."""

    def __init__(
        self,
        runtime: LocalRuntime,
        *,
        settle_seconds: float = 2.0,
        poll_seconds: float = 0.25,
        on_outcome: Callable[[FileOutcome], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.dispatcher = Dispatcher(runtime.ports, runtime.bus)
        self.raw_dir = runtime.store.root / c.RAW_PREFIX
        self.tracker = SettleTracker(settle_seconds)
        self.poll_seconds = poll_seconds
        self.on_outcome = on_outcome
        self._stop = threading.Event()
        self._submitted: list[_Submitted] = []

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end after the delivery in hand (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def offer(self, path: Path) -> None:
        """A file under raw/ appeared or changed; hidden/temporary files are not inputs. Every
        other file is: ingest takes .csv/.csv.gz (any case) and rejects any other kind with a
        failure record, as it does on AWS."""
        key = self._key_of(path)
        name = path.name
        if key is None or name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES):
            return
        self.tracker.touch(path)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """Resume, catch up, then watch until `stop()`."""
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(_RawHandler(self), str(self.raw_dir), recursive=True)
        observer.start()
        try:
            log_event(logger, "watching", raw_dir=str(self.raw_dir))
            self._work()  # resume what the outbox still holds
            for path in sorted(p for p in self.raw_dir.rglob("*") if p.is_file()):
                self.offer(path)
            while not self.stopping:
                try:
                    self.step(time.monotonic())
                except Exception as exc:  # keep watching: the next step retries
                    logger.warning(
                        "watch step failed",
                        extra={"fields": {"error_type": type(exc).__name__, "error": str(exc)}},
                    )
                self._stop.wait(self.poll_seconds)
        finally:
            observer.stop()
            observer.join(timeout=10)
            log_event(logger, "stopped watching", raw_dir=str(self.raw_dir))

    def step(self, now: float) -> None:
        """Publish the files that settled, run due deliveries, report finished files."""
        ready = self.tracker.ready(now)
        for index, path in enumerate(ready):
            try:
                self._submit(path)
            except Exception:
                for unsent in ready[index:]:
                    self.tracker.touch(unsent)  # retried once they settle again
                raise
        self._work()
        self._report()

    def _key_of(self, path: Path) -> str | None:
        try:
            relative = path.resolve().relative_to(self.runtime.store.root.resolve())
        except ValueError:
            return None
        return relative.as_posix()

    def _submit(self, path: Path) -> None:
        key = self._key_of(path)
        if key is None or not path.is_file():
            return
        store = self.runtime.store
        version = store.version_of(path)
        correlation_id = correlation_id_for(store.bucket, key, version)
        if self.runtime.bus.deliveries_for(correlation_id):
            return  # this version was already ingested (by `healthpipe run`, or before)
        event = upload_event(self.runtime, key)
        self.runtime.bus.publish(event)
        self._submitted.append(_Submitted(event.id, correlation_id, path))
        log_event(logger, "file settled, event published", key=key)

    def _work(self) -> None:
        """Run every due delivery, one at a time, until none is due or we are stopping."""
        bus, dispatcher = self.runtime.bus, self.dispatcher
        while not self.stopping:
            delivery = bus.claim_due(dispatcher.owner, dispatcher.lease_seconds)
            if delivery is None:
                return
            dispatcher.run(delivery)

    def _report(self) -> None:
        """Tell `on_outcome` about each submitted file whose deliveries have all ended."""
        still: list[_Submitted] = []
        for item in self._submitted:
            ingest = self.runtime.bus.delivery_of(item.event_id, "ingest")
            downstream = self.runtime.bus.deliveries_for(item.correlation_id)
            if (ingest is None or ingest["status"] in OPEN_STATUSES) or any(
                d["status"] in OPEN_STATUSES for d in downstream
            ):
                still.append(item)
                continue
            outcome = collect(
                self.runtime, item.event_id, item.correlation_id, FileOutcome(str(item.path))
            )
            if self.on_outcome is not None:
                self.on_outcome(outcome)
        self._submitted = still
