"""Notify routing on the real local runtime: alerts, digest-only, idempotency, failures."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from healthpipe import constants as c
from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.config import load_settings
from healthpipe.errors import PermanentError
from healthpipe.events import Event
from healthpipe.orchestration.runs import run_files
from healthpipe.ports import Mailer
from healthpipe.report.browse import INDEX_KEY
from healthpipe.stages.notify import notify
from healthpipe.synthetic import SyntheticSpec, generate_csv


class RecordingMailer(Mailer):
    """Keeps every message; fails for names starting with `fail_prefix` while it is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, EmailMessage]] = []
        self.fail_prefix: str | None = None

    def _send(self, message: EmailMessage, name: str) -> str:
        if self.fail_prefix and name.startswith(self.fail_prefix):
            raise PermanentError(f"refusing {name}")
        self.sent.append((name, message))
        return f"recorded:{name}"

    @property
    def names(self) -> list[str]:
        return [name.split("-", 1)[0] for name, _ in self.sent]


@pytest.fixture(scope="module")
def vitals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vitals") / "ward.csv"
    generate_csv(SyntheticSpec(rows=600, users=6, seed=3), path)
    return path


def _runtime(tmp_path: Path, **overrides: Any) -> Iterator[tuple[LocalRuntime, RecordingMailer]]:
    settings = load_settings(
        {"workspace": tmp_path / "ws", "retry_base_seconds": 0.0, "max_attempts": 1, **overrides}
    )
    runtime = build_local(settings)
    mailer = RecordingMailer()
    runtime.ports.mailer = mailer
    try:
        yield runtime, mailer
    finally:
        runtime.close()


@pytest.fixture
def default_rt(tmp_path: Path) -> Iterator[tuple[LocalRuntime, RecordingMailer]]:
    yield from _runtime(tmp_path)


def _analysis_event(dataset_id: str) -> Event:
    return Event(c.SOURCE_ANALYZER, c.ANALYSIS_COMPLETE, {"dataset_id": dataset_id})


def test_high_findings_send_an_alert_then_the_report_once(
    default_rt: tuple[LocalRuntime, RecordingMailer], vitals: Path
) -> None:
    runtime, mailer = default_rt
    (result,) = run_files(runtime, [vitals])
    assert result.status == "processed" and result.dataset_id
    assert mailer.names == ["alert", "report"]
    alert = mailer.sent[0][1]
    assert str(alert["Subject"]).startswith("[ALERT] ")
    assert "high severity or above" in str(alert["Subject"])
    # WHEN the analysis event is delivered again THEN nothing more is sent
    again = notify(_analysis_event(result.dataset_id), runtime.ports)
    assert again.outcome == "skipped"
    assert mailer.names == ["alert", "report"]
    assert runtime.ports.ledger.get(f"alert:{result.dataset_id}") is not None


def test_digest_only_routine_file_gets_no_email_but_is_saved_and_indexed(
    tmp_path: Path, vitals: Path
) -> None:
    for runtime, mailer in _runtime(tmp_path, digest_only=True, alert_min_severity="never"):
        (result,) = run_files(runtime, [vitals])
        assert result.status == "processed"
        assert mailer.sent == []
        saved = f"reports/{result.dataset_id}.html"
        assert runtime.store.exists(saved)
        index = runtime.store.get_bytes(INDEX_KEY).decode()
        assert f'href="{result.dataset_id}.html"' in index


def test_digest_only_still_alerts_and_reports_a_file_with_severe_findings(
    tmp_path: Path, vitals: Path
) -> None:
    for runtime, mailer in _runtime(tmp_path, digest_only=True, alert_min_severity="medium"):
        run_files(runtime, [vitals])
        assert mailer.names == ["alert", "report"]
        assert "medium severity or above" in str(mailer.sent[0][1]["Subject"])


def test_a_failed_report_send_is_retried_without_repeating_the_alert(
    default_rt: tuple[LocalRuntime, RecordingMailer], vitals: Path
) -> None:
    runtime, mailer = default_rt
    mailer.fail_prefix = "report-"
    (result,) = run_files(runtime, [vitals])
    assert result.status == "failed" and result.dataset_id
    assert mailer.names == ["alert"]
    assert runtime.ports.ledger.get(f"notify:{result.dataset_id}") is None  # released
    # WHEN the cause is fixed and the event redelivered THEN only the report goes out
    mailer.fail_prefix = None
    outcome = notify(_analysis_event(result.dataset_id), runtime.ports)
    assert outcome.outcome == "done"
    assert mailer.names == ["alert", "report"]
