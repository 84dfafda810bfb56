"""The report archive under `reports/`: one report, its card, and the rebuilt index.

The stages' side of `report/browse.py`: the report package builds the pages and cards, this
module stores them through the `ObjectStore` port (notify and digest publish here).
"""

from __future__ import annotations

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
    cards, total = load_cards(store)
    store.put_bytes(INDEX_KEY, render_index(cards, total).encode(), "text/html; charset=utf-8")
    return card.html_key
