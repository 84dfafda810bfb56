"""Digest: one email summarising every dataset analysed in a window, once per window.

Trigger: the scheduled `Digest Requested` event (source `health.data.scheduler`) on AWS, or
`healthpipe digest` locally. Detail fields, all optional:

    window_seconds  length of the window (default 86400, one day)
    until           end of the window: epoch seconds or ISO 8601 (default: the event's time)

The window end is rounded up to the minute, so a redelivered scheduled event (same time)
claims the same `digest:<start>-<end>` ledger key and sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from healthpipe.domain.documents import Analysis, AnalysisSummary
from healthpipe.domain.identity import analysis_key, ledger_key
from healthpipe.errors import PermanentError
from healthpipe.events import Event
from healthpipe.report.browse import ReportCard
from healthpipe.report.digest import (
    Window,
    build_digest_message,
    build_digest_model,
    render_digest_html,
    window_totals,
)
from healthpipe.stages.archive import publish
from healthpipe.stages.base import Ports, StageResult, log_event, run_claimed

STAGE = "digest"
DEFAULT_WINDOW_SECONDS = 86400
MAX_DATASETS = 5000
logger = logging.getLogger("healthpipe.digest")


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise PermanentError(f"digest: unreadable time {text[:40]!r}") from exc


def window_for(event: Event) -> Window:
    detail = event.detail or {}
    length = float(detail.get("window_seconds") or DEFAULT_WINDOW_SECONDS)
    if length <= 0:
        raise PermanentError("digest: window_seconds must be positive")
    end = _epoch(detail.get("until") or event.time)
    end += (60 - end % 60) % 60  # up to the minute: what arrived just before `until` counts
    return Window(end - length, end)


def digest(event: Event, ports: Ports) -> StageResult:
    window = window_for(event)
    return run_claimed(
        ports,
        ledger_key(STAGE, window.identity),
        STAGE,
        lambda: StageResult("done", [], _send_digest(window, ports)),
        logger=logger,
        context={"window": window.identity},
    )


def _analyses(current: list[AnalysisSummary], ports: Ports) -> dict[str, Analysis]:
    """The analysis document of each dataset of the window (its risk and trends, as its report
    states them: the summary holds neither criterion nor trends); one no longer in the store
    is left out (the digest says its risk is not known)."""
    found = {}
    for summary in current:
        key = summary.keys.analysis if summary.keys else analysis_key(summary.dataset_id)
        if ports.store.exists(key):
            found[summary.dataset_id] = ports.store.get_document(key, Analysis)
    return found


def _send_digest(window: Window, ports: Ports) -> dict[str, Any]:
    started = time.perf_counter()
    mail = ports.digest_settings.mail
    summaries = ports.analyses.recent(limit=MAX_DATASETS, since_epoch=window.previous.start)
    current = [s for s in summaries if window.holds(s)]
    previous = [s for s in summaries if window.previous.holds(s)]
    model = build_digest_model(window, current, previous, _analyses(current, ports))
    model.index_href = "index.html"
    charts = [model.chart()]
    totals = window_totals(current)
    saved = publish(
        ports.store,
        ReportCard(
            name=window.name,
            kind="digest",
            created_at=datetime.fromtimestamp(window.end, UTC).isoformat(timespec="seconds"),
            title=f"Digest {model.period}",
            worst_severity=model.worst_severity,
            findings=totals["findings"],
            rows_input=totals["rows_input"],
        ),
        render_digest_html(model, charts),
    )
    message = build_digest_message(
        model, charts, sender=mail.sender, recipients=list(mail.recipients)
    )
    sent_to = ports.mailer.send(message, name=window.name)
    duration = int((time.perf_counter() - started) * 1000)
    ports.metrics.add("EmailsSent", 1, stage=STAGE)
    ports.metrics.add("StageDurationMs", duration, stage=STAGE, unit="Milliseconds")
    log_event(
        logger,
        "digest sent",
        window=window.identity,
        datasets=len(current),
        previous_datasets=len(previous),
        duration_ms=duration,
    )
    return {
        "window": window.identity,
        "datasets": len(current),
        "previous_datasets": len(previous),
        "report_key": saved,
        "email": sent_to,
        "subject": model.subject,
    }
