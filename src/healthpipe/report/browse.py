"""Saved reports under `reports/`, each with a small JSON card, and an `index.html` of them all.

Pure: the cards, their JSON and the index page; `stages/archive.py` saves them through the
`ObjectStore` port. Each notifier writes only its own files (`reports/<name>.html` and a card under
`reports/cards/`); the index is rebuilt from the cards, so two notifiers running at once never
lose a report (the later rebuild includes both). Card keys start with the creation time, so
the newest `INDEX_LIMIT` are found from one listing without reading every card.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from healthpipe.constants import REPORTS_PREFIX
from healthpipe.report.labels import SEVERITY_COLOURS
from healthpipe.report.render import render_template
from healthpipe.report.safe import neutralise

INDEX_KEY = f"{REPORTS_PREFIX}index.html"
CARDS_PREFIX = f"{REPORTS_PREFIX}cards/"
INDEX_LIMIT = 500


@dataclass(frozen=True)
class ReportCard:
    name: str  # file stem under reports/: `<dataset_id>` or `digest-<window>`
    kind: str  # "report" or "digest"
    created_at: str  # ISO 8601 UTC; the index sorts on it, newest first
    title: str
    worst_severity: str
    findings: int
    rows_input: int

    @property
    def html_key(self) -> str:
        return f"{REPORTS_PREFIX}{self.name}.html"

    @property
    def card_key(self) -> str:
        stamp = "".join(ch for ch in self.created_at[:19] if ch.isdigit()) or "0"
        return f"{CARDS_PREFIX}{stamp}-{self.name}.json"


def _card(data: dict[str, Any]) -> ReportCard:
    return ReportCard(
        name=str(data["name"]),
        kind=str(data.get("kind", "report")),
        created_at=str(data.get("created_at", "")),
        title=str(data.get("title", "")),
        worst_severity=str(data.get("worst_severity", "none")),
        findings=int(data.get("findings", 0)),
        rows_input=int(data.get("rows_input", 0)),
    )


def card_from_json(data: bytes) -> ReportCard:
    """A card as saved by `card_json`; ValueError, KeyError or TypeError when damaged."""
    return _card(json.loads(data))


def card_json(card: ReportCard) -> bytes:
    return json.dumps(asdict(card)).encode()


def newest_first(cards: list[ReportCard]) -> list[ReportCard]:
    return sorted(cards, key=lambda c: (c.created_at, c.name), reverse=True)


def render_index(cards: list[ReportCard], total: int | None = None) -> str:
    rows = [
        {
            "href": f"{c.name}.html",
            "kind": c.kind,
            "created": c.created_at[:16].replace("T", " ") + " UTC",
            "title": neutralise(c.title, 120),
            "worst": neutralise(c.worst_severity, 10),
            "findings": f"{c.findings:,}",
            "rows": f"{c.rows_input:,}",
        }
        for c in cards
    ]
    return render_template(
        "index.html",
        {"rows": rows, "total": len(rows) if total is None else total, "colours": SEVERITY_COLOURS},
    )
