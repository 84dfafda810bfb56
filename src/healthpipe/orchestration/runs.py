"""`healthpipe run`: put files into the workspace bucket's raw/ and drive each to completion."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote_plus

from healthpipe import constants as c
from healthpipe.adapters.local.event_bus import Delivery
from healthpipe.bootstrap import LocalRuntime
from healthpipe.dataops.worker_pool import worker_pool
from healthpipe.domain.documents import Manifest
from healthpipe.domain.identity import (
    correlation_id_for,
    file_stem,
    ledger_key,
    manifest_key,
    report_key,
)
from healthpipe.errors import HealthpipeError
from healthpipe.events import Event, object_created
from healthpipe.orchestration.local import Dispatcher
from healthpipe.ports import sha256_file
from healthpipe.report import charts
from healthpipe.stages.base import facts_listener

Status = Literal["processed", "skipped", "rejected", "failed"]


@dataclass
class FileOutcome:
    source: str
    dataset_id: str | None = None
    status: Status = "failed"
    rows: dict[str, int] = field(default_factory=lambda: {"input": 0, "valid": 0, "rejected": 0})
    anomalies: int = 0
    report: str | None = None
    email: str | None = None
    error: str | None = None
    # why a file was skipped: "same content already processed with rules <profile>"
    note: str | None = None
    # "assessed", or "not assessable: no valid readings" (a file with no valid reading)
    assessment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sha256(path: Path) -> str:
    return sha256_file(path)[0]


def raw_key_for(runtime: LocalRuntime, source: Path) -> str:
    """raw/<name>; a different file already under that name is never overwritten."""
    name = source.name
    key = f"{c.RAW_PREFIX}{name}"
    target = runtime.store.path_for(key)
    if target.exists() and _sha256(target) != _sha256(source):
        suffix = ".csv.gz" if name.lower().endswith(".csv.gz") else Path(name).suffix
        key = f"{c.RAW_PREFIX}{file_stem(name)}-{_sha256(source)[:8]}{suffix}"
    return key


def upload_raw(runtime: LocalRuntime, source: Path) -> str:
    key = raw_key_for(runtime, source)
    target = runtime.store.path_for(key)
    if not target.exists():
        runtime.store.put_file(key, source, "text/csv")
    return key


def upload_event(runtime: LocalRuntime, key: str) -> Event:
    """The "Object Created" event S3 would send for `key`: its key URL-encoded, as S3's is
    (ingest decodes it, so a literal `%` or `+` in a file name must arrive encoded)."""
    target = runtime.store.path_for(key)
    version = runtime.store.version_of(target)
    return object_created(
        runtime.store.bucket, quote_plus(key, safe="/"), version, target.stat().st_size
    )


def run_file(
    runtime: LocalRuntime,
    dispatcher: Dispatcher,
    source: Path,
    resumed: Resumed | None = None,
) -> FileOutcome:
    """Upload `source` to raw/, drain the outbox, and say what became of it; `resumed`, what
    the drain that finished earlier, stopped runs did (`Resumed`)."""
    outcome = FileOutcome(source=str(source))
    if not source.is_file():
        what = "is a directory, not a file" if source.is_dir() else "no such file"
        outcome.status, outcome.error = "rejected", f"{what}: {source}"
        return outcome
    name = source.name.lower()
    if not name.endswith(c.ACCEPTED_SUFFIXES):
        outcome.status = "rejected"
        outcome.error = f"not a .csv or .csv.gz file: {source.name}"
        return outcome
    key = upload_raw(runtime, source)
    event = upload_event(runtime, key)
    version = event.detail["object"].get("version-id")
    dispatcher.submit(event)
    # the charts drawn beside analyze and notify (nothing without a chart worker)
    with facts_listener(charts.prefetch_facts_charts):
        dispatcher.drain(
            on_step=lambda delivery: prefetch_after_ingest(runtime, event.id, delivery)
        )
    correlation_id = correlation_id_for(runtime.store.bucket, key, version)
    return collect(runtime, event.id, correlation_id, outcome, resumed=resumed)


def prefetch_after_ingest(runtime: LocalRuntime, upload_id: str, delivery: Delivery) -> None:
    """Once ingest has written the manifest of the upload `upload_id` (its event's id), the
    chart worker draws the file's rejections chart (`charts.prefetch`) while analyze runs:
    notify finds it drawn."""
    if delivery.target != "ingest" or not charts.drawing_elsewhere():
        return
    ingest = runtime.bus.delivery_of(upload_id, "ingest")
    done = ingest is not None and ingest["status"] == "delivered" and ingest["outcome"] == "done"
    key = ingest["result"].get("manifest_key") if ingest is not None and done else None
    if not key:
        return
    try:
        manifest = runtime.store.get_document(str(key), Manifest)
    except (HealthpipeError, OSError, ValueError):
        return  # notify draws the chart with the others
    charts.prefetch([charts.rejections_job(manifest.counts.by_reason)])


def collect(
    runtime: LocalRuntime,
    event_id: str,
    correlation_id: str,
    outcome: FileOutcome,
    *,
    resumed: Resumed | None = None,
) -> FileOutcome:
    """Read what each stage did for one upload from the outbox's delivery records; with
    `resumed` (what the drain that finished earlier runs did), a file whose earlier run
    stopped and was finished then is `processed` (`Resumed.take`), not `skipped`."""
    ingest = runtime.bus.delivery_of(event_id, "ingest")
    if ingest is None:
        outcome.error = "the upload matched no ingest route"
        return outcome
    if ingest["status"] != "delivered":
        outcome.error = ingest["last_error"] or f"ingest {ingest['status']}"
        return outcome
    info = ingest["result"]
    outcome.dataset_id = info.get("dataset_id")
    outcome.rows = info.get("rows") or outcome.rows
    if info.get("status") == "rejected":
        outcome.status, outcome.error = "rejected", info.get("error") or "file rejected"
        return outcome
    outcome.status = "processed" if ingest["outcome"] == "done" else "skipped"
    skipped = outcome.status == "skipped"
    finished = resumed.take(runtime, outcome.dataset_id) if skipped and resumed else {}
    if finished:
        outcome.status, outcome.note = "processed", RESUMED
        outcome.email = finished.get("notify", {}).get("email")
    elif outcome.status == "skipped" and outcome.dataset_id:
        outcome.note = skipped_note(runtime, outcome.dataset_id)
    for delivery in runtime.bus.deliveries_for(correlation_id, after_id=int(ingest["id"])):
        if delivery["status"] != "delivered":
            outcome.status = "failed"
            outcome.error = delivery["last_error"] or f"{delivery['target']} did not finish"
        result = delivery["result"]
        if delivery["target"] == "analyze" and "anomalies" in result:
            outcome.anomalies = int(result["anomalies"])
            outcome.assessment = result.get("assessment")
        if delivery["target"] == "notify" and delivery["outcome"] == "done":
            outcome.email = result.get("email")
    if outcome.dataset_id:
        html = runtime.store.path_for(report_key(outcome.dataset_id))
        outcome.report = str(html) if html.exists() else None
    return outcome


RESUMED = "resumed: this run finished an earlier run of the same file that had stopped"
RESUMABLE_STAGES = ("analyze", "notify")


@dataclass
class Resumed:
    """The drain with which `run_files` first finishes what earlier, stopped runs left: its
    span (`finished_here`), and the datasets this command has reported as resumed. The same
    file given twice is resumed once: its second entry is content this command has just
    processed, `skipped`."""

    began: float
    ended: float
    reported: set[str] = field(default_factory=set)

    def take(self, runtime: LocalRuntime, dataset_id: str | None) -> dict[str, dict[str, Any]]:
        """`finished_here` for `dataset_id`, once per dataset: {} after the first time."""
        if dataset_id is None or dataset_id in self.reported:
            return {}
        found = finished_here(runtime, dataset_id, (self.began, self.ended))
        if found:
            self.reported.add(dataset_id)
        return found


def finished_here(
    runtime: LocalRuntime, dataset_id: str | None, span: tuple[float, float]
) -> dict[str, dict[str, Any]]:
    """The results of the stages this process claimed within `span` and completed for
    `dataset_id`, by stage. When a run stopped (Ctrl-C, a crash) and the same file is run
    again, `run_files` first resumes the stopped run's deliveries, and the new upload's
    ingest then finds the content done: that file was processed by this run, not skipped.
    (The same file twice in one command: the second finds the first's claims, made after
    that span, and is skipped.)"""
    if not dataset_id:
        return {}
    ledger = runtime.ports.ledger
    found = {}
    for stage in RESUMABLE_STAGES:
        record = ledger.get(ledger_key(stage, dataset_id))
        if (
            record is not None
            and record.status == "completed"
            and record.owner == ledger.owner
            and span[0] <= record.updated_at <= span[1]
        ):
            found[stage] = record.result
    return found


def skipped_note(runtime: LocalRuntime, dataset_id: str) -> str:
    """Which rules the earlier run of the same content applied (this run's are not)."""
    try:
        manifest = json.loads(runtime.store.get_bytes(manifest_key(dataset_id)))
        rules = manifest.get("rules_profile") or "unknown"
    except (HealthpipeError, OSError, ValueError):
        rules = "unknown"
    return f"skipped: same content already processed with rules {rules}"


# Inputs from this size on (about 600k rows) keep ingest busy for longer than the chart
# worker takes to start and import matplotlib (about 1 CPU-second); below it the worker
# would only compete with the run, and the charts are drawn in the run's process.
CHART_WORKER_MIN_BYTES = 32 * 1024 * 1024


def wants_chart_worker(sizes: list[int], cpus: int) -> bool:
    """A chart worker pays when a core is free for it and a file is large enough."""
    return cpus > 1 and any(size >= CHART_WORKER_MIN_BYTES for size in sizes)


def chart_worker(sources: list[Path]) -> ProcessPoolExecutor | None:
    """One process that imports matplotlib now, while ingest runs, and draws the report's
    charts later (`report.charts.drawing_in`), or None (`wants_chart_worker`). Notify's
    matplotlib import (0.4 CPU-seconds, 0.9 compiled from source) leaves the run's path,
    and the run's process never holds matplotlib (about 35 MB)."""
    sizes = [s.stat().st_size for s in sources if s.is_file()]
    if not wants_chart_worker(sizes, os.cpu_count() or 1):
        return None
    context = multiprocessing.get_context(worker_start_method())
    pool = worker_pool(1, context)
    with main_script_hidden():
        pool.submit(charts.warm_up)  # starts the process
    return pool


def worker_start_method() -> str:
    """How the chart worker starts: forked from this process while it has one thread (as
    `run` has when it starts the worker, before any engine or display thread), else
    spawned. A forked worker has this process's modules (pydantic, the documents, the
    charts' module) and only imports matplotlib: about half a CPU-second less than a
    spawned one, taken from ingest's cores (docs/scaling.md). With another thread alive a
    fork could copy a lock that thread holds; where the threads cannot be counted (no
    /proc: threads that native code starts, DuckDB's, are not in `threading`), it spawns."""
    if "fork" in multiprocessing.get_all_start_methods() and threads_alive() == 1:
        return "fork"
    return "spawn"


def threads_alive() -> int | None:
    """This process's threads, native ones included (Linux's /proc), or None: unknown."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


@contextmanager
def main_script_hidden() -> Iterator[None]:
    """While a process is spawned: a spawned process first runs its parent's main script
    (multiprocessing's `init_main_from_path`, or `_from_name` under `python -m`), which
    for `healthpipe run` is the console script importing the whole CLI (DuckDB, pydantic
    settings, every command) before it can take a job. The chart worker's jobs are
    functions of `report.charts`: with the script hidden, the worker starts without it
    (0.4-0.5 CPU-s less while ingest runs, 22 MB less in the worker)."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = main.__dict__.pop("__file__", None), getattr(main, "__spec__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        if saved[0] is not None:
            main.__file__ = saved[0]
        main.__spec__ = saved[1]


def run_files(
    runtime: LocalRuntime,
    sources: list[Path],
    on_file: Callable[[FileOutcome], None] | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> list[FileOutcome]:
    pool = chart_worker(sources)
    try:
        with charts.drawing_in(pool) if pool is not None else nullcontext():
            dispatcher = Dispatcher(runtime.ports, runtime.bus)
            began = time.time()
            dispatcher.drain()  # finish what an earlier run left when it stopped or crashed
            resumed = Resumed(began, time.time())
            results = []
            for source in sources:
                if on_start is not None:
                    on_start(source)
                result = run_file(runtime, dispatcher, source, resumed)
                results.append(result)
                if on_file is not None:
                    on_file(result)
            return results
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
