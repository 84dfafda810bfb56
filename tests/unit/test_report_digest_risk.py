"""The digest states each dataset's risk as its report does ("risk from this file's readings:
<level> (<criterion>)", `report/model.py::file_risk`) with its count of trends to review,
the dangerous first, and nothing in it reads as reassurance while a dataset of the window has
a high finding or a flagged trend. Hand-made analyses, stored as the pipeline stores them
(the analysis document and its summary); the digest stage on the local runtime."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import test_report_digest
from test_report_digest import END, RecordingMailer, _body, digest_event
from test_report_render import make_analysis
from test_report_trends import HOSTILE, trend

from healthpipe.bootstrap import LocalRuntime
from healthpipe.domain.documents import Analysis
from healthpipe.domain.identity import analysis_key
from healthpipe.stages.analyze import _summary
from healthpipe.stages.digest import digest

SECRET = "digest-secret"
HIGH = "risk from this file's readings: high (at least one high-severity finding)"
LOW = "risk from this file's readings: low (no high- or medium-severity finding)"
TWO_TRENDS = "2 trends to review (compared with the last 28 days)"
# what would read as "nothing to worry about"
REASSURING = re.compile(r"all clear|no concern|nothing to (review|report)|all (normal|good)", re.I)


# test_report_digest's fixture (a local runtime whose mailer records what it sends), shared:
# bound here, not imported by name, which the tests' `rt` parameters would shadow (F811)
rt = test_report_digest.rt


def flagged(count: int) -> dict[str, Any]:
    users = [f"user_{n:03d}" for n in range(count)]
    return {"window_days": 28, "participants_assessed": 3, "flagged": [trend(u) for u in users]}


def calm(dataset_id: str, name: str, trends: dict[str, Any] | None) -> dict[str, Any]:
    """A file with readings and no finding (the rule's "low")."""
    doc = make_analysis(dataset_id=dataset_id, source={"key": f"raw/{name}"}, risk_level="low")
    doc.update(worst_severity="none", anomalies={"total": 0}, high_participants=None)
    doc.update(episodes={"total": 0}, users={"total": 3}, trends=trends)
    return doc


def high(dataset_id: str, name: str) -> dict[str, Any]:
    """41 high-severity findings of 1,200 readings: the rule's "high"."""
    doc = make_analysis(dataset_id=dataset_id, source={"key": f"raw/{name}"}, risk_level="high")
    return {**doc, "trends": flagged(0)}


def store(runtime: LocalRuntime, doc: dict[str, Any], minutes_before_end: int) -> None:
    """The analysis document and its summary, as analyze stores them."""
    analysis = Analysis.model_validate(doc)
    runtime.store.put_document(analysis_key(analysis.dataset_id), analysis)
    summary = _summary(analysis, SECRET)
    summary.created_epoch = END - 60 * minutes_before_end
    summary.created_at = datetime.fromtimestamp(summary.created_epoch, UTC).isoformat()
    runtime.ports.analyses.save(summary, [])


def sent(rt: tuple[LocalRuntime, RecordingMailer]) -> tuple[str, str, str]:
    runtime, mailer = rt
    assert digest(digest_event(), runtime.ports).outcome == "done"
    ((_, message),) = mailer.sent
    assert isinstance(message, EmailMessage)
    return str(message["Subject"]), _body(message, "plain"), _body(message, "html")


def dataset_lines(text: str) -> list[str]:
    block = text.split("\nDATASETS", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()[1:] if line.strip()]


def test_each_dataset_states_its_risk_and_trends_the_dangerous_first(
    rt: tuple[LocalRuntime, RecordingMailer],
) -> None:
    # GIVEN a window with a clean file (newest), a file with only flagged trends, and a file
    # with high-severity findings (oldest)
    store(rt[0], calm("c" * 16, "clean.csv", flagged(0)), 10)
    store(rt[0], calm("t" * 16, "trend-only.csv", flagged(2)), 20)
    store(rt[0], high("h" * 16, "ward<b>7.csv"), 30)

    subject, text, html = sent(rt)

    # THEN each line states the risk with its criterion and the trends, the dangerous first
    lines = dataset_lines(text)
    assert [line.split("]")[0].rsplit("[", 1)[1] for line in lines] == [
        "h" * 16,
        "t" * 16,
        "c" * 16,
    ]
    assert lines[0].endswith(f"{HIGH} · no trend flagged (compared with the last 28 days)")
    assert lines[1].endswith(f"{LOW} · {TWO_TRENDS}")
    assert lines[2].endswith(f"{LOW} · no trend flagged (compared with the last 28 days)")
    assert "DATASETS (highest risk first" in text
    # AND the window's headline names the highest risk and the trends, in subject and header
    assert subject.endswith(" | highest risk: high | 2 trends to review")
    headline = (
        "Highest risk from a file's readings: high (at least one high-severity finding) · "
        "2 trends to review in 1 dataset"
    )
    assert headline in text
    # AND the HTML says the same, escaped, in the same order
    escaped = headline.replace("'", "&#39;")
    assert escaped in html
    rows = [html.index(f"{c * 16}</span>") for c in "htc"]
    assert rows == sorted(rows)
    assert "ward&lt;b&gt;7.csv" in html and "ward<b>7" not in html
    assert "Risk from this file's readings: <strong>high</strong> (at least one" in html
    assert f"(at least one high-severity finding) · <strong>{TWO_TRENDS}</strong>" not in html
    assert f"(no high- or medium-severity finding) · <strong>{TWO_TRENDS}</strong>" in html
    for part in (subject, text, html):
        assert not REASSURING.search(part), REASSURING.search(part)


def test_low_risk_with_flagged_trends_is_not_reported_as_all_low(
    rt: tuple[LocalRuntime, RecordingMailer],
) -> None:
    # GIVEN a window without any finding, one file with a flagged trend (hostile criterion)
    store(rt[0], calm("c" * 16, "clean.csv", None), 10)
    trends = flagged(1)
    trends["flagged"][0]["criterion"] = HOSTILE
    store(rt[0], calm("t" * 16, "trend-only.csv", trends), 20)

    subject, text, html = sent(rt)

    # THEN the trend leads, and the headline and subject count it beside the low risk
    lines = dataset_lines(text)
    assert "t" * 16 in lines[0] and lines[0].endswith(
        f"{LOW} · 1 trend to review (compared with the last 28 days)"
    )
    assert lines[1].endswith(f"{LOW} · trends not assessed")
    assert subject.endswith(" | highest risk: low | 1 trend to review")
    assert (
        "Highest risk from a file's readings: low (no high- or medium-severity finding) · "
        "1 trend to review in 1 dataset"
    ) in text
    assert HOSTILE not in html
    for part in (subject, text, html):
        assert not REASSURING.search(part)


def test_a_dataset_whose_analysis_is_missing_is_not_counted_as_low(
    rt: tuple[LocalRuntime, RecordingMailer],
) -> None:
    # GIVEN a clean file, and a file whose analysis document is gone from the store
    runtime = rt[0]
    store(runtime, calm("c" * 16, "clean.csv", flagged(0)), 10)
    store(runtime, high("g" * 16, "gone.csv"), 20)
    runtime.store.delete(analysis_key("g" * 16))

    subject, text, _ = sent(rt)

    # THEN it comes first and says its risk is not known, never "low"
    lines = dataset_lines(text)
    assert "g" * 16 in lines[0]
    assert lines[0].endswith("risk not known (its analysis document is missing) · trends not known")
    assert subject.endswith(" | highest risk: low, not known for 1 dataset")
    assert (
        "Highest risk from a file's readings: low (no high- or medium-severity finding) · "
        "risk not known for 1 dataset"
    ) in text
