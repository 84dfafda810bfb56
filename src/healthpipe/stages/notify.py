"""Notify: render the report of one analysis and send it, exactly once per analysis."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from healthpipe.domain.identity import analysis_key, ledger_key, report_key
from healthpipe.events import Event
from healthpipe.report.charts import report_charts
from healthpipe.report.model import build_report_model
from healthpipe.report.render import build_message, render_html
from healthpipe.stages.base import Ports, StageResult, log_event

STAGE = "notify"
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
    try:
        info = _send_report(event, dataset_id, ports)
    except Exception:
        ports.ledger.release(claim_key)
        ports.metrics.add("StageFailures", 1, stage=STAGE)
        ports.metrics.flush()
        raise
    ports.ledger.complete(claim_key, info)
    ports.metrics.flush()
    return StageResult("done", [], info)


def _send_report(event: Event, dataset_id: str, ports: Ports) -> dict[str, Any]:
    started = time.perf_counter()
    key = str(event.detail.get("analysis_key") or analysis_key(dataset_id))
    analysis = json.loads(ports.store.get_bytes(key))
    settings = ports.settings
    model = build_report_model(
        analysis,
        secret=settings.pseudonym_secret.get_secret_value(),
        top_users=min(settings.top_users, 25),
    )
    charts = report_charts(analysis)
    html_key = report_key(dataset_id)
    ports.store.put_bytes(
        html_key,
        render_html(model, charts, inline_images=True).encode(),
        "text/html; charset=utf-8",
    )
    message = build_message(model, charts, sender=settings.email_from, recipients=settings.email_to)
    sent_to = ports.mailer.send(message, name=f"report-{dataset_id}")
    duration = int((time.perf_counter() - started) * 1000)
    ports.metrics.add("EmailsSent", 1, stage=STAGE)
    ports.metrics.add("StageDurationMs", duration, stage=STAGE, unit="Milliseconds")
    log_event(
        logger,
        "report sent",
        dataset_id=dataset_id,
        duration_ms=duration,
        correlation_id=event.correlation_id,
    )
    return {
        "dataset_id": dataset_id,
        "report_key": html_key,
        "email": sent_to,
        "subject": model.subject,
    }
