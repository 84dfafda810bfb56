"""The report archive under `reports/`: one report, its card, and the rebuilt index.

The stages' side of `report/browse.py`: the report package builds the pages and cards, this
module stores them through the `ObjectStore` port (notify and digest publish here).
"""

from __future__ import annotations

from healthpipe.constants import REPORTS_PREFIX
from healthpipe.domain.documents import Analysis
from healthpipe.ports import ObjectStore
from healthpipe.report.browse import (
    CARDS_PREFIX,
    INDEX_KEY,
    INDEX_LIMIT,
    ReportCard,
    card_from_json,
    card_json,
    newest_first,
    render_index,
)
from healthpipe.report.charts import Chart, report_charts
from healthpipe.report.model import ReportModel, build_report_model
from healthpipe.report.render import render_html


def load_cards(store: ObjectStore, limit: int = INDEX_LIMIT) -> tuple[list[ReportCard], int]:
    """The newest `limit` cards, newest first, and how many cards there are in all."""
    keys = [k for k in store.list_keys(CARDS_PREFIX) if k.endswith(".json")]
    cards = []
    for key in keys[-limit:]:
        try:
            cards.append(card_from_json(store.get_bytes(key)))
        except (ValueError, KeyError, TypeError):
            continue  # a damaged card costs one index line, not the index
    return newest_first(cards), len(keys)


def publish(store: ObjectStore, card: ReportCard, html: str) -> str:
    """Save one report and its card, then rebuild the index. Returns the report's key."""
    store.put_bytes(card.html_key, html.encode(), "text/html; charset=utf-8")
    store.put_bytes(card.card_key, card_json(card), "application/json")
    rebuild_index(store)
    return card.html_key


def rebuild_index(store: ObjectStore) -> None:
    cards, total = load_cards(store)
    store.put_bytes(INDEX_KEY, render_index(cards, total).encode(), "text/html; charset=utf-8")


def withdraw(store: ObjectStore, name: str) -> int:
    """Delete the report page `name` and its cards, then rebuild the index (erasure); the
    number of objects deleted."""
    doomed = [f"{REPORTS_PREFIX}{name}.html"] + [
        key for key in store.list_keys(CARDS_PREFIX) if key.endswith(f"-{name}.json")
    ]
    for key in doomed:
        store.delete(key)
    rebuild_index(store)
    return len(doomed)


def save_report(
    store: ObjectStore, analysis: Analysis, *, secret: str, top_users: int
) -> tuple[str, ReportModel, list[Chart]]:
    """Render one analysis's report page (charts inlined) and publish it with its card: its
    key, and the model and charts the email is built from. Notify saves each report here;
    `healthpipe forget` saves again those whose analysis it made anew."""
    model = build_report_model(analysis, secret=secret, top_users=min(top_users, 25))
    charts = report_charts(analysis)
    model.index_href = "index.html"
    saved = publish(
        store,
        ReportCard(
            name=analysis.dataset_id,
            kind="report",
            created_at=analysis.created_at,
            title=model.source_name,
            worst_severity=model.worst_severity,
            findings=analysis.anomalies.total,
            rows_input=analysis.data_quality.rows_input,
        ),
        render_html(model, charts, inline_images=True),
    )
    model.index_href = ""
    return saved, model, charts
