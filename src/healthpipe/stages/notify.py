"""Notify: save the report of one analysis, alert on severe findings, send the report.

Exactly once per analysis, whatever the number of deliveries: the report claims
`notify:<dataset_id>` and the alert its own `alert:<dataset_id>` in the ledger, so a retry
after a failed report send never repeats an alert that already went out.

Routing: findings at/above `alert_min_severity` → a short `[ALERT]` email first. With
`digest_only`, a routine file (no such findings) gets no report email (it is still saved
under `reports/` and counted in the digest); a file that alerted still gets its report.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from healthpipe import progress
from healthpipe.domain.documents import Analysis, AnalysisComplete
from healthpipe.domain.identity import analysis_key, ledger_key, report_key
from healthpipe.events import Event
from healthpipe.report.alert import alert_count, build_alert_message, build_alert_model
from healthpipe.report.charts import prefetch_report_charts
from healthpipe.report.render import build_message, compile_templates
from healthpipe.stages.archive import save_report
from healthpipe.stages.base import Ports, StageResult, log_event, run_claimed, run_once

STAGE = "notify"
ALERT = "alert"
REPORT_TEMPLATES = (
    "report.html",
    "report.txt",
    "index.html",
    "_macros.html",
    "_trends.html",
    "_trends.txt",
)
ALERT_TEMPLATES = ("alert.html", "alert.txt")
logger = logging.getLogger("healthpipe.notify")


def notify(event: Event, ports: Ports) -> StageResult:
    dataset_id = str(event.detail["dataset_id"])
    return run_claimed(
        ports,
        ledger_key(STAGE, dataset_id),
        STAGE,
        lambda: StageResult("done", [], _notify(event, dataset_id, ports)),
        logger=logger,
        context={"dataset_id": dataset_id},
    )


def _notify(event: Event, dataset_id: str, ports: Ports) -> dict[str, Any]:
    progress.step("report")
    started = time.perf_counter()
    settings = ports.notify_settings
    key = AnalysisComplete.model_validate(event.detail).analysis_key or analysis_key(dataset_id)
    analysis = ports.store.get_document(key, Analysis)
    severe = alert_count(analysis, settings.alert_min_severity)
    # the charts drawing in the chart worker (`healthpipe run`) while this process builds
    # the report's model and compiles its templates
    prefetch_report_charts(analysis)
    compile_templates(*REPORT_TEMPLATES, *(ALERT_TEMPLATES if severe else ()))
    saved, model, charts = save_report(
        ports.store, analysis, secret=settings.pseudonym_secret, top_users=settings.top_users
    )
    info: dict[str, Any] = {"dataset_id": dataset_id, "report_key": saved}
    if severe:
        info["alert"] = _send_alert(analysis, dataset_id, ports, saved)
    if settings.digest_only and not severe:
        info["email"] = None
        info["routed"] = "digest_only"
    else:
        message = build_message(
            model, charts, sender=settings.mail.sender, recipients=list(settings.mail.recipients)
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


def _send_alert(analysis: Analysis, dataset_id: str, ports: Ports, saved: str) -> Any:
    """Send the alert once, under its own claim (`run_once`): returns where it went, or
    where it went the first time. Raises `ClaimHeldError` while another worker holds the
    alert's claim, so that the report waits for the alert instead of going without it."""
    settings = ports.notify_settings

    def send() -> dict[str, Any]:
        model = build_alert_model(
            analysis,
            secret=settings.pseudonym_secret,
            threshold=settings.alert_min_severity,
            report_key=saved or report_key(dataset_id),
        )
        message = build_alert_message(
            model, sender=settings.mail.sender, recipients=list(settings.mail.recipients)
        )
        sent_to = ports.mailer.send(message, name=f"alert-{dataset_id}")
        ports.metrics.add("EmailsSent", 1, stage=STAGE)
        ports.metrics.add("AlertsSent", 1, stage=STAGE)
        return {"email": sent_to, "subject": model.subject}

    result = run_once(
        ports.ledger,
        ledger_key(ALERT, dataset_id),
        send,
        save=lambda sent: sent,
        replay=lambda stored: stored,
        now=time.time(),
    )
    return result.get("email", "completed")
