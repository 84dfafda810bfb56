"""Duplicate and concurrent deliveries: one processing, one analysis, one email.

GIVEN the same upload delivered many times (at-least-once S3/EventBridge, retried Lambdas,
the same file run twice at once)
WHEN every delivery runs, one after the other or at the same moment
THEN exactly one delivery per stage does the work, the others are skipped, and one email goes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rel_helpers import (
    CRASH_ENTRY,
    assert_exactly_once,
    db_rows,
    make_input,
    report_emails,
    subprocess_env,
)

from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.config import Settings
from healthpipe.events import Event
from healthpipe.orchestration.local import Dispatcher
from healthpipe.orchestration.runs import upload_event, upload_raw
from healthpipe.stages.analyze import analyze
from healthpipe.stages.base import Ports, StageResult
from healthpipe.stages.ingest import ingest
from healthpipe.stages.notify import notify

COPIES = 10


def _upload_event(runtime: LocalRuntime, source: Path) -> Event:
    return upload_event(runtime, upload_raw(runtime, source))


def _outcomes(runtime: LocalRuntime) -> dict[str, Counter[str]]:
    rows = runtime.db.query("SELECT target, outcome FROM deliveries WHERE status = 'delivered'")
    found: dict[str, Counter[str]] = {}
    for row in rows:
        found.setdefault(row["target"], Counter())[row["outcome"]] += 1
    return found


def test_same_upload_published_ten_times_is_processed_once(
    runtime: LocalRuntime, workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    first = _upload_event(runtime, source)
    copies = [Event(first.source, first.detail_type, dict(first.detail)) for _ in range(COPIES)]
    dispatcher = Dispatcher(runtime.ports, runtime.bus)
    for event in copies:
        dispatcher.submit(event)

    dispatcher.drain()

    outcomes = _outcomes(runtime)
    for stage in ("ingest", "analyze", "notify"):
        assert outcomes[stage] == Counter({"done": 1, "skipped": COPIES - 1}), stage
    assert_exactly_once(workspace, source)


def test_same_event_object_handled_ten_times_by_each_stage(
    runtime: LocalRuntime, workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    event = _upload_event(runtime, source)
    for stage in (ingest, analyze, notify):
        results = [stage(event, runtime.ports) for _ in range(COPIES)]
        assert [r.outcome for r in results] == ["done"] + ["skipped"] * (COPIES - 1)
        if results[0].events:
            replayed = {json.dumps(r.events[0].detail, sort_keys=True) for r in results}
            emitted = results[0].events[0].detail
            assert all(r.events[0].detail["dataset_id"] == emitted["dataset_id"] for r in results)
            assert len(replayed) <= 2  # the original, and the replay (marked replay_of)
            event = results[0].events[0]
    assert len(report_emails(workspace)) == 1
    assert db_rows(workspace, "SELECT count(*) FROM analyses") == [(1,)]


def _race(
    workers: list[LocalRuntime], stage: Callable[[Event, Ports], StageResult], event: Event
) -> list[StageResult]:
    """Every worker runs `stage(event)` at the same moment (a barrier releases them)."""
    barrier = threading.Barrier(len(workers))
    results: list[StageResult] = []
    errors: list[BaseException] = []

    def work(rt: LocalRuntime) -> None:
        barrier.wait(timeout=30)
        try:
            results.append(stage(event, rt.ports))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rt,)) for rt in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_ten_concurrent_workers_per_stage_one_wins(
    settings: Settings, workspace: Path, tmp_path: Path
) -> None:
    """Ten workers, each with its own database connection and ledger owner (like ten Lambda
    containers), get the same event at the same moment at every stage."""
    source = make_input(tmp_path / "vitals.csv")
    workers = [build_local(settings) for _ in range(COPIES)]
    try:
        event = _upload_event(workers[0], source)
        for stage in (ingest, analyze, notify):
            results = _race(workers, stage, event)
            outcomes = Counter(r.outcome for r in results)
            assert outcomes["done"] == 1, outcomes
            assert outcomes["done"] + outcomes["skipped"] + outcomes["in_progress"] == COPIES
            done = next(r for r in results if r.outcome == "done")
            if done.events:
                event = done.events[0]
    finally:
        for rt in workers:
            rt.close()
    assert len(report_emails(workspace)) == 1
    assert db_rows(workspace, "SELECT count(*) FROM analyses") == [(1,)]
    assert db_rows(workspace, "SELECT count(*) FROM ledger WHERE status <> 'completed'") == [(0,)]


def test_two_run_processes_on_the_same_file_one_processes_one_skips(
    workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    # Both processes hold their ingest claim a little longer, so that they surely overlap.
    slow = ["--slow", "healthpipe.adapters.local.ledger:SqliteLedger.complete=1.5"]
    command = [sys.executable, str(CRASH_ENTRY), *slow, "--"]
    args = ["run", str(source), "-w", str(workspace), "--json"]
    workspace.mkdir(parents=True)
    procs = [
        subprocess.Popen(
            [*command, *args],
            env=subprocess_env(workspace),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outputs]
    statuses = sorted(
        json.loads(o[0].strip().splitlines()[-1])["files"][0]["status"] for o in outputs
    )
    assert statuses == ["processed", "skipped"]
    assert_exactly_once(workspace, source)
    assert db_rows(
        workspace, "SELECT count(*) FROM deliveries WHERE target = 'notify' AND outcome = 'done'"
    ) == [(1,)]
