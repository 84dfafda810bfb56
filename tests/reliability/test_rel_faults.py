"""Faults in every port: transient ones are retried away, permanent ones dead-letter the
delivery with its error and event, and a re-drive after the fault is gone completes the run
exactly once.

GIVEN a local runtime whose adapters raise on demand (real adapters behind a fault plan)
WHEN a file is run while a port fails transiently (once) or permanently (every call)
THEN transient: the run completes, exactly once; permanent: a dead letter names the error
and the event, and `retry` (redrive + drain) completes the run exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rel_faults import FaultPlan, build_faulty
from rel_helpers import (
    assert_exactly_once,
    json_files,
    make_input,
    notify_done_count,
    report_emails,
    run_cli,
)

from healthpipe import constants as c
from healthpipe.bootstrap import LocalRuntime
from healthpipe.config import Settings
from healthpipe.domain.identity import correlation_id_for
from healthpipe.errors import PermanentError, TransientError
from healthpipe.events import Event
from healthpipe.orchestration.local import Dispatcher
from healthpipe.orchestration.runs import (
    FileOutcome,
    collect,
    run_files,
    upload_event,
    upload_raw,
)

# fault point -> the stage (delivery target) it breaks first
POINTS = {
    "store.materialize": "ingest",
    "store.put_file": "ingest",
    "store.put_bytes": "ingest",
    "store.get_bytes": "analyze",
    "ledger.claim": "ingest",
    "ledger.complete": "ingest",
    "bus.finish": "ingest",
    "analyses.save": "analyze",
    "analyst.analyze": "analyze",
    "mailer.send": "notify",
    "metrics.write": "ingest",
}


@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan()


@pytest.fixture
def faulty(settings: Settings, plan: FaultPlan) -> LocalRuntime:
    runtime = build_faulty(settings, plan)
    yield runtime  # type: ignore[misc]
    runtime.close()


def _submit(runtime: LocalRuntime, source: Path) -> Event:
    event = upload_event(runtime, upload_raw(runtime, source))
    runtime.bus.publish(event)
    return event


def _outcome(runtime: LocalRuntime, event: Event, source: Path) -> FileOutcome:
    key = f"raw/{source.name}"
    version = event.detail["object"].get("version-id")
    return collect(
        runtime,
        event.id,
        correlation_id_for(runtime.store.bucket, key, version),
        FileOutcome(source=str(source)),
    )


@pytest.mark.parametrize("point", sorted(POINTS))
def test_transient_fault_is_retried_and_the_run_completes_once(
    point: str,
    faulty: LocalRuntime,
    plan: FaultPlan,
    workspace: Path,
    tmp_path: Path,
) -> None:
    """Both kinds of transient error, one after the other, in the same port: a
    TransientError, then an OSError (each is retried; one run checks both, as each run
    costs seconds)."""
    source = make_input(tmp_path / "vitals.csv")
    event = _submit(faulty, source)
    plan.arm(point, lambda: TransientError(f"injected transient fault in {point}"), times=1)
    plan.arm(point, lambda: OSError(f"injected transient fault in {point}"), times=1)

    Dispatcher(faulty.ports, faulty.bus).drain()

    assert plan.hits.get(point) == 2, "the two faults were not both hit"
    outcome = _outcome(faulty, event, source)
    # a fault after the claim completed is retried as a replay: the run then says "skipped"
    assert outcome.status in {"processed", "skipped"}, outcome
    assert outcome.error is None
    assert_exactly_once(workspace, source)
    assert notify_done_count(workspace) == 1
    attempts = faulty.db.query(
        "SELECT max(attempts) AS n FROM deliveries WHERE target = ?", (POINTS[point],)
    )
    assert attempts[0]["n"] >= 2, "the failed delivery was retried"


@pytest.mark.parametrize("point", sorted(POINTS))
def test_permanent_fault_dead_letters_then_retry_completes_once(
    point: str, faulty: LocalRuntime, plan: FaultPlan, workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    event = _submit(faulty, source)
    plan.arm(point, lambda: PermanentError(f"injected permanent fault in {point}"), times=None)

    Dispatcher(faulty.ports, faulty.bus).drain()

    outcome = _outcome(faulty, event, source)
    assert outcome.status == "failed"
    assert f"injected permanent fault in {point}" in (outcome.error or "")
    [letter] = faulty.bus.dead_letters()
    assert letter["target"] == POINTS[point]
    assert letter["attempts"] == 1, "a permanent error is not retried"
    assert f"PermanentError: injected permanent fault in {point}" in letter["last_error"]
    assert letter["event_id"] and letter["detail_type"]
    assert not report_emails(workspace)

    plan.clear()
    assert faulty.bus.redrive() == 1
    Dispatcher(faulty.ports, faulty.bus).drain()

    assert faulty.bus.dead_letters() == []
    assert_exactly_once(workspace, source)
    assert notify_done_count(workspace) == 1


def test_fault_exhausting_retries_dead_letters_then_retry_completes(
    faulty: LocalRuntime, plan: FaultPlan, workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    plan.arm("mailer.send", lambda: TransientError("smtp down"), times=None)

    [outcome] = run_files(faulty, [source])

    assert outcome.status == "failed"
    [letter] = faulty.bus.dead_letters()
    assert (letter["target"], letter["attempts"]) == ("notify", 3)
    plan.clear()
    faulty.bus.redrive()
    Dispatcher(faulty.ports, faulty.bus).drain()
    assert_exactly_once(workspace, source)


def test_publish_fault_fails_the_run_and_a_rerun_completes_once(
    faulty: LocalRuntime, plan: FaultPlan, workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    plan.arm("bus.publish", lambda: TransientError("database is locked"), times=1)

    with pytest.raises(TransientError):
        run_files(faulty, [source])
    assert (workspace / "bucket" / "raw" / source.name).is_file()

    [outcome] = run_files(faulty, [source])

    assert outcome.status == "processed"
    assert_exactly_once(workspace, source)


def test_cli_retry_redrives_a_dead_letter_from_a_failed_run(
    workspace: Path, tmp_path: Path
) -> None:
    """Real processes: `run` with a mailer that refuses (permanent) exits 1 with a dead
    letter; `healthpipe retry` once the mailer works sends the one email."""
    source = make_input(tmp_path / "vitals.csv")
    failing = run_cli(
        ["run", str(source), "-w", str(workspace), "--json"],
        workspace,
        crash=["--fail", "healthpipe.adapters.local.mailer:OutboxMailer._send"],
    )
    assert failing.returncode == 1, failing.stderr[-2000:]
    [outcome] = json_files(failing)
    assert outcome["status"] == "failed"
    assert "injected permanent fault" in outcome["error"]
    status = run_cli(["status", "-w", str(workspace), "--json"], workspace)
    assert '"target": "notify"' in status.stdout

    retried = run_cli(["retry", "-w", str(workspace)], workspace)

    assert retried.returncode == 0, retried.stderr[-2000:]
    assert "re-drove 1 dead letter(s); 0 remain" in retried.stdout
    assert_exactly_once(workspace, source)


def test_digest_whose_ledger_write_fails_is_retried_and_sent_once(
    faulty: LocalRuntime, plan: FaultPlan, workspace: Path, tmp_path: Path
) -> None:
    """Regression: the digest stage completed its claim outside its try block, so a failed
    ledger write left its own claim in progress and every retry was 'in progress'."""
    source = make_input(tmp_path / "vitals.csv")
    [outcome] = run_files(faulty, [source])
    assert outcome.status == "processed"
    request = Event(c.SOURCE_SCHEDULER, c.DIGEST_REQUESTED, {"window_seconds": 86400})
    faulty.bus.publish(request)
    plan.arm("ledger.complete", lambda: TransientError("database is locked"), times=1)

    Dispatcher(faulty.ports, faulty.bus).drain()

    assert plan.hits["ledger.complete"] == 1
    digest = faulty.bus.delivery_of(request.id, "digest")
    assert digest is not None
    assert (digest["status"], digest["outcome"], digest["attempts"]) == ("delivered", "done", 2)
    assert (
        faulty.db.query("SELECT count(*) AS n FROM ledger WHERE status <> 'completed'")[0]["n"] == 0
    )
    assert len(list((workspace / "outbox").glob("*.eml"))) == 3  # report, alert, digest
