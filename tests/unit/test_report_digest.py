"""Digest windows and trends, the digest stage's idempotency, and the reports index."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from healthpipe import constants as c
from healthpipe.bootstrap import LocalRuntime, build_local
from healthpipe.config import load_settings
from healthpipe.domain.documents import AnalysisSummary, HeadlineCounts
from healthpipe.errors import PermanentError
from healthpipe.events import Event
from healthpipe.orchestration.local import Dispatcher
from healthpipe.ports import Mailer
from healthpipe.report.browse import INDEX_KEY, ReportCard
from healthpipe.report.digest import Window, build_digest_model, change
from healthpipe.stages.archive import load_cards, publish
from healthpipe.stages.digest import digest, window_for

END = datetime(2026, 11, 25, 7, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


class RecordingMailer(Mailer):
    def __init__(self) -> None:
        self.sent: list[tuple[str, EmailMessage]] = []

    def _send(self, message: EmailMessage, name: str) -> str:
        self.sent.append((name, message))
        return f"recorded:{name}"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[tuple[LocalRuntime, RecordingMailer]]:
    runtime = build_local(load_settings({"workspace": tmp_path / "ws"}))
    mailer = RecordingMailer()
    runtime.ports.mailer = mailer
    yield runtime, mailer
    runtime.close()


def summary(
    dataset_id: str, epoch: float, *, high: int, rows: int, **extra: Any
) -> AnalysisSummary:
    doc = {
        "dataset_id": dataset_id,
        "created_at": datetime.fromtimestamp(epoch, UTC).isoformat(),
        "created_epoch": epoch,
        "source_key": f"raw/{dataset_id}.csv",
        "rows": {"input": rows, "valid": rows - 10, "rejected": 10},
        "reject_reasons": {"invalid_spo2": 10},
        "anomalies": {
            "total": high + 5,
            "by_severity": {"high": high, "low": 5},
            "by_kind": {"tachycardia": high, "fever": 5},
        },
        "episodes": {"total": 1, "by_kind": {}},
        "worst_severity": "high" if high else "low",
        **extra,
    }
    return AnalysisSummary.model_validate(doc)


def digest_event(until: float | str | None = None, **detail: Any) -> Event:
    if until is not None:
        detail["until"] = until
    return Event(c.SOURCE_SCHEDULER, c.DIGEST_REQUESTED, detail, time="2026-11-25T06:59:42+00:00")


def _body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def test_window_defaults_to_the_day_before_the_event_rounded_up_to_the_minute() -> None:
    window = window_for(digest_event())
    assert (window.start, window.end) == (END - DAY, END)
    assert window_for(digest_event("2026-11-25T06:59:01Z", window_seconds=3600)) == Window(
        END - 3600, END
    )
    assert window.previous == Window(END - 2 * DAY, END - DAY)
    with pytest.raises(PermanentError):
        window_for(digest_event("yesterday"))


def test_change_wording() -> None:
    assert change(15, 10) == "+5 (+50%)"
    assert change(7, 10) == "−3 (−30%)"
    assert change(4, 4) == "no change"
    assert change(2, 0) == "+2 (new)"


def test_digest_summarises_the_window_with_trends_and_sends_once(
    rt: tuple[LocalRuntime, RecordingMailer],
) -> None:
    runtime, mailer = rt
    store = runtime.ports.analyses
    store.save(summary("a" * 16, END - 3600, high=3, rows=1000), [])
    store.save(summary("b" * 16, END - 7200, high=0, rows=500), [])
    store.save(summary("c" * 16, END - DAY - 60, high=1, rows=400), [])  # previous window
    store.save(summary("d" * 16, END - 3 * DAY, high=9, rows=999), [])  # too old
    store.save(summary("e" * 16, END + 60, high=9, rows=999), [])  # after the window

    result = digest(digest_event(), runtime.ports)
    assert result.outcome == "done"
    assert result.info["datasets"] == 2 and result.info["previous_datasets"] == 1
    ((name, message),) = mailer.sent
    assert name == "digest-20261125T0700Z-24h"
    subject = str(message["Subject"])
    assert "2 datasets |" in subject and "worst severity: high" in subject
    text, html = _body(message, "plain"), _body(message, "html")
    for part in (text, html):
        assert "a" * 16 in part and "b" * 16 in part
        assert "c" * 16 not in part and "d" * 16 not in part and "e" * 16 not in part
        assert "1,500" in part and "400" in part and "+1,100 (+275%)" in part  # rows in
        assert "+2 (+200%)" in part  # high-severity findings 3 vs 1
    assert re.search(r"Datasets analysed: 2 \(before 1; \+1 \(\+100%\)\)", text)
    assert message.get_content_type() == "multipart/alternative"
    (image,) = [p for p in message.walk() if p.get_content_maintype() == "image"]
    assert f'src="cid:{str(image["Content-ID"]).strip("<>")}"' in html
    saved = runtime.store.get_bytes("reports/digest-20261125T0700Z-24h.html").decode()
    assert 'src="data:image/png;base64,' in saved

    # GIVEN the same scheduled event delivered twice THEN one email only
    again = digest(digest_event(), runtime.ports)
    assert again.outcome == "skipped" and len(mailer.sent) == 1
    assert runtime.store.exists("reports/digest-20261125T0700Z-24h.html")
    index = runtime.store.get_bytes(INDEX_KEY).decode()
    assert 'href="digest-20261125T0700Z-24h.html"' in index


def test_digest_is_reachable_through_the_local_event_routes(
    rt: tuple[LocalRuntime, RecordingMailer],
) -> None:
    runtime, mailer = rt
    dispatcher = Dispatcher(runtime.ports, runtime.bus)
    dispatcher.submit(digest_event(END))
    assert dispatcher.drain() == 1
    assert [n for n, _ in mailer.sent] == ["digest-20261125T0700Z-24h"]
    assert "No dataset was analysed in this window" in _body(mailer.sent[0][1], "html")


def test_digest_escapes_hostile_file_names(rt: tuple[LocalRuntime, RecordingMailer]) -> None:
    runtime, mailer = rt
    evil = summary("f" * 16, END - 60, high=1, rows=10)
    evil.source_key = 'raw/<img src=x onerror=alert(1)>=HYPERLINK("x").csv'
    runtime.ports.analyses.save(evil, [])
    digest(digest_event(), runtime.ports)
    html = _body(mailer.sent[0][1], "html")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def _card(name: str, created: str, title: str = "t") -> ReportCard:
    return ReportCard(name, "report", created, title, "low", 1, 10)


def test_index_lists_every_report_newest_first_and_escapes_titles(
    rt: tuple[LocalRuntime, RecordingMailer],
) -> None:
    store = rt[0].store
    publish(store, _card("old", "2026-11-20T10:00:00+00:00"), "<p>old</p>")
    publish(store, _card("new", "2026-11-25T10:00:00+00:00", "<b>x</b>"), "<p>new</p>")
    publish(store, _card("mid", "2026-11-22T10:00:00+00:00"), "<p>mid</p>")
    store.put_bytes("reports/cards/20261121000000-broken.json", b"{not json")
    cards, total = load_cards(store)
    assert [c.name for c in cards] == ["new", "mid", "old"] and total == 4
    assert [c.name for c in load_cards(store, limit=2)[0]] == ["new", "mid"]
    index = store.get_bytes(INDEX_KEY).decode()
    positions = [index.index(f'href="{n}.html"') for n in ("new", "mid", "old")]
    assert positions == sorted(positions)
    assert "<b>x</b>" not in index and "&lt;b&gt;x&lt;/b&gt;" in index
    assert store.get_bytes("reports/mid.html") == b"<p>mid</p>"


def test_dataset_without_valid_readings_is_not_assessable_in_the_digest() -> None:
    # GIVEN a window with a file whose rows were all rejected, and an ordinary one
    rejected = summary("d-rejected", 1_000.0, high=0, rows=10, worst_severity="none")
    rejected.anomalies = HeadlineCounts(total=0, by_severity={}, by_kind={})
    ordinary = summary("d-ok", 1_100.0, high=1, rows=100, worst_severity="high")
    # WHEN the digest model is built
    model = build_digest_model(Window(0.0, 2_000.0), [rejected, ordinary], [])
    # THEN the rejected file reads "not assessable", never "none"
    worst = {d["dataset_id"]: d["worst"] for d in model.datasets}
    assert worst == {"d-rejected": "not assessable: no valid readings", "d-ok": "high"}
