"""Crash tests: SIGKILL the runner inside each stage, rerun, and nothing is lost or doubled.

GIVEN a `healthpipe run` killed with SIGKILL at a point inside a stage
WHEN the same file is run again (or `healthpipe retry` drains the outbox), in the test's
process: only the killed run needs a process of its own
THEN every input row is in exactly one of processed/rejected, there is one analysis and one
email, and no ledger claim or delivery is left in progress: the dead process's claims are
taken over at once, without waiting for the lease.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from rel_helpers import (
    assert_exactly_once,
    db_rows,
    json_files,
    make_input,
    run_cli,
    run_in_process,
)

from healthpipe.adapters.local.ledger import SqliteLedger
from healthpipe.bootstrap import LocalRuntime
from healthpipe.errors import PermanentError
from healthpipe.events import Event
from healthpipe.owners import default_owner

LEDGER_COMPLETE = "healthpipe.adapters.local.ledger:SqliteLedger.complete"
BUS_FINISH = "healthpipe.adapters.local.event_bus:SqliteEventBus.finish"
BUS_PUBLISH = "healthpipe.adapters.local.event_bus:SqliteEventBus._publish"
STORE_ADOPT_FILE = "healthpipe.adapters.local.object_store:FolderObjectStore._adopt_file"
STORE_PUT_BYTES = "healthpipe.adapters.local.object_store:FolderObjectStore._put_bytes"
ANALYSES_SAVE = "healthpipe.adapters.local.analysis_store:SqliteAnalysisStore._save"
MAILER_SEND = "healthpipe.adapters.local.mailer:OutboxMailer._send"

# name -> crash arguments for rel_crash_entry.py. Call numbers follow one run of the input
# (whose findings are severe enough for an alert email): put_file #1 copies the upload into
# raw/; ingest moves its outputs in with _adopt_file (#1 CSV, #2 Parquet); ledger.complete
# #1/#2/#3/#4 = ingest/analyze/alert/notify; mailer.send #1/#2 = alert/report;
# bus.finish #1/#2/#3 = the ingest/analyze/notify deliveries.
CRASH_POINTS: dict[str, list[str]] = {
    "upload-published-not-drained": ["--kill", BUS_PUBLISH, "--nth", "1", "--when", "after"],
    "ingest-mid-duckdb": ["--duckdb", "healthpipe.dataops.validation.file", "--nth", "6"],
    "ingest-between-output-files": ["--kill", STORE_ADOPT_FILE, "--nth", "2"],
    "ingest-outputs-written-ledger-not-complete": ["--kill", LEDGER_COMPLETE, "--nth", "1"],
    "ingest-complete-event-not-published": ["--kill", BUS_FINISH, "--nth", "1"],
    "analyze-mid-duckdb": ["--duckdb", "healthpipe.dataops.analysis.facts", "--nth", "8"],
    "analysis-json-written-not-stored": ["--kill", ANALYSES_SAVE, "--nth", "1"],
    "analysis-stored-ledger-not-complete": [
        "--kill",
        ANALYSES_SAVE,
        "--nth",
        "1",
        "--when",
        "after",
    ],
    "analysis-complete-event-not-published": ["--kill", BUS_FINISH, "--nth", "2"],
    "report-html-written-alert-not-sent": ["--kill", MAILER_SEND, "--nth", "1"],
    "alert-sent-ledger-not-complete": ["--kill", MAILER_SEND, "--nth", "1", "--when", "after"],
    "alert-complete-report-not-sent": ["--kill", MAILER_SEND, "--nth", "2"],
    "email-sent-ledger-not-complete": ["--kill", MAILER_SEND, "--nth", "2", "--when", "after"],
    "notify-complete-delivery-not-recorded": ["--kill", BUS_FINISH, "--nth", "3"],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_input(tmp_path_factory.mktemp("input") / "vitals.csv")


def _crash(workspace: Path, source: Path, point: str) -> None:
    crashed = run_cli(
        ["run", str(source), "-w", str(workspace), "--json"],
        workspace,
        crash=CRASH_POINTS[point],
    )
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr[-2000:])


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_rerun_after_sigkill_finishes_exactly_once(
    point: str, source: Path, workspace: Path
) -> None:
    _crash(workspace, source, point)

    rerun = run_in_process(["run", str(source), "-w", str(workspace), "--json"], workspace)

    assert rerun.returncode == 0, rerun.stderr[-2000:]
    [outcome] = json_files(rerun)
    assert outcome["status"] in {"processed", "skipped"}
    assert_exactly_once(workspace, source)
    assert len(list((workspace / "outbox").glob("alert-*.eml"))) == 1, "the input alerts"


@pytest.mark.parametrize(
    "point", ["ingest-outputs-written-ledger-not-complete", "email-sent-ledger-not-complete"]
)
def test_retry_drain_alone_finishes_the_crashed_run(
    point: str, source: Path, workspace: Path
) -> None:
    _crash(workspace, source, point)
    stuck = db_rows(workspace, "SELECT count(*) FROM ledger WHERE status = 'in_progress'")
    assert stuck == [(1,)], "the crash should leave the claim of the dead process"

    retried = run_in_process(["retry", "-w", str(workspace)], workspace)

    assert retried.returncode == 0, retried.stderr[-2000:]
    assert_exactly_once(workspace, source)
    takeovers = db_rows(workspace, "SELECT max(attempts) FROM ledger")
    assert takeovers == [(2,)], "the dead owner's claim is taken over, not waited out"


def test_repeated_crashes_in_successive_stages_then_rerun(source: Path, workspace: Path) -> None:
    """Run 1 dies completing ingest, run 2 completing analyze, run 3 after the alert email;
    run 4 completes everything once (each run first takes over what the last one left)."""
    for nth in ("1", "2", "2"):
        crashed = run_cli(
            ["run", str(source), "-w", str(workspace), "--json"],
            workspace,
            crash=["--kill", LEDGER_COMPLETE, "--nth", nth],
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert len(list((workspace / "outbox").glob("alert-*.eml"))) == 1

    final = run_in_process(["run", str(source), "-w", str(workspace), "--json"], workspace)

    assert final.returncode == 0, final.stderr[-2000:]
    assert_exactly_once(workspace, source)


def test_a_live_but_stuck_owner_keeps_its_claim_until_the_lease_runs_out(
    runtime: LocalRuntime,
) -> None:
    """The pid check only frees claims of dead processes; a hung one is waited out."""
    stuck = SqliteLedger(runtime.db, lease_seconds=900.0)  # this (live) process's pid
    other = SqliteLedger(runtime.db, lease_seconds=900.0)
    now = time.time()
    assert stuck.claim("ingest:abc", now=now).acquired

    assert other.claim("ingest:abc", now=now + 899).outcome == "in_progress"
    taken = other.claim("ingest:abc", now=now + 901)

    assert taken.acquired and taken.record.attempts == 2
    with pytest.raises(PermanentError, match="lost the claim"):
        stuck.complete("ingest:abc", {})  # the stuck worker cannot complete it any more
    other.complete("ingest:abc", {"ok": True})


def test_a_running_delivery_under_a_live_lease_is_redelivered_after_it(
    runtime: LocalRuntime,
) -> None:
    runtime.bus.publish(Event("health.data.scheduler", "Digest Requested", {}))
    now = time.time()
    # a worker on another host took it and hangs: its liveness cannot be checked from here
    first = runtime.bus.claim_due("other-host:1:stuck", lease_seconds=60, now=now)
    assert first is not None

    assert runtime.bus.claim_due(default_owner(), 60, now=now + 59) is None
    again = runtime.bus.claim_due(default_owner(), 60, now=now + 61)

    assert again is not None and again.id == first.id and again.attempts == 2
