"""Notify: save the report of one analysis, alert on severe findings, send the report.

Exactly once per analysis, whatever the number of deliveries: the report claims
`notify:<dataset_id>` and the alert its own `alert:<dataset_id>` in the ledger, so a retry
after a failed report send never repeats an alert that already went out.

Routing: findings at/above `alert_min_severity` → a short `[ALERT]` email first. With
`digest_only`, a routine file (no such findings) gets no report email (it is still saved
under `reports/` and counted in the digest); a file that alerted still gets its report.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from healthpipe import progress
from healthpipe.domain.identity import analysis_key, ledger_key, report_key
from healthpipe.events import Event
from healthpipe.report.alert import alert_count, build_alert_message, build_alert_model
from healthpipe.report.browse import ReportCard
from healthpipe.report.charts import report_charts
from healthpipe.report.model import build_report_model
from healthpipe.report.render import build_message, render_html
from healthpipe.stages.archive import publish
from healthpipe.stages.base import Ports, StageResult, log_event, run_claimed

STAGE = "notify"
ALERT = "alert"
logger = logging.getLogger("healthpipe.notify")


def notify(event: Event, ports: Ports) -> StageResult:
    dataset_id = str(event.detail["dataset_id"])
    claim_key = ledger_key(STAGE, dataset_id)
    claim = ports.ledger.claim(claim_key)
    if not claim.acquired:
        log_event(
            logger, "report already sent or in progress", dataset_id=dataset_id, claim=claim.outcome
        )
        return StageResult(
            "in_progress" if claim.outcome == "in_progress" else "skipped",
            [],
            {"dataset_id": dataset_id, **claim.record.result},
        )
    info = run_claimed(ports, claim_key, STAGE, lambda: _notify(event, dataset_id, ports), dict)
    return StageResult("done", [], info)


def _notify(event: Event, dataset_id: str, ports: Ports) -> dict[str, Any]:
    progress.step("report")
    started = time.perf_counter()
    settings = ports.settings
    key = str(event.detail.get("analysis_key") or analysis_key(dataset_id))
    analysis = json.loads(ports.store.get_bytes(key))
    secret = settings.pseudonym_secret.get_secret_value()
    model = build_report_model(analysis, secret=secret, top_users=min(settings.top_users, 25))
    charts = report_charts(analysis)
    model.index_href = "index.html"
    saved = publish(
        ports.store,
        ReportCard(
            name=dataset_id,
            kind="report",
            created_at=str(analysis.get("created_at", "")),
            title=model.source_name,
            worst_severity=model.worst_severity,
            findings=int(analysis["anomalies"]["total"]),
            rows_input=int(analysis["data_quality"]["rows_input"]),
        ),
        render_html(model, charts, inline_images=True),
    )
    model.index_href = ""
    info: dict[str, Any] = {"dataset_id": dataset_id, "report_key": saved}
    severe = alert_count(analysis, settings.alert_min_severity)
    if severe:
        info["alert"] = _send_alert(analysis, dataset_id, ports, saved)
    if settings.digest_only and not severe:
        info["email"] = None
        info["routed"] = "digest_only"
    else:
        message = build_message(
            model, charts, sender=settings.email_from, recipients=settings.email_to
        )
        progress.step("send")
        info["email"] = ports.mailer.send(message, name=f"report-{dataset_id}")
        info["subject"] = model.subject
        ports.metrics.add("EmailsSent", 1, stage=STAGE)
    duration = int((time.perf_counter() - started) * 1000)
    ports.metrics.add("StageDurationMs", duration, stage=STAGE, unit="Milliseconds")
    log_event(
        logger,
        "report done",
        dataset_id=dataset_id,
        duration_ms=duration,
        alerted=bool(severe),
        emailed=info["email"] is not None,
        correlation_id=event.correlation_id,
    )
    return info


def _send_alert(analysis: dict[str, Any], dataset_id: str, ports: Ports, saved: str) -> Any:
    """Send the alert once (its own ledger claim); returns where it went, or its old record."""
    claim_key = ledger_key(ALERT, dataset_id)
    claim = ports.ledger.claim(claim_key)
    if not claim.acquired:
        return claim.record.result.get("email", claim.outcome)
    settings = ports.settings
    try:
        model = build_alert_model(
            analysis,
            secret=settings.pseudonym_secret.get_secret_value(),
            threshold=settings.alert_min_severity,
            report_key=saved or report_key(dataset_id),
        )
        message = build_alert_message(
            model, sender=settings.email_from, recipients=settings.email_to
        )
        sent_to = ports.mailer.send(message, name=f"alert-{dataset_id}")
        ports.ledger.complete(claim_key, {"email": sent_to, "subject": model.subject})
    except Exception:
        ports.ledger.release(claim_key)
        raise
    ports.metrics.add("EmailsSent", 1, stage=STAGE)
    ports.metrics.add("AlertsSent", 1, stage=STAGE)
    return sent_to
