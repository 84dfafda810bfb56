"""Report model, charts and MIME assembly on a hand-made analysis (no pipeline run)."""

from __future__ import annotations

import copy
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest

from healthpipe.domain.documents import Analysis
from healthpipe.domain.identity import pseudonym
from healthpipe.report.alert import alert_count, build_alert_message, build_alert_model
from healthpipe.report.charts import Chart, downscaled, report_charts
from healthpipe.report.model import build_report_model
from healthpipe.report.render import MessageTooLarge, build_message, render_html, render_text
from healthpipe.report.safe import neutralise

SECRET = "test-secret"
HOSTILE_ID = '<script>alert("x")</script>=HYPERLINK("http://evil","click")'
LONG = "A" * 5000
NON_ASCII = "Zoë-Łukasz-日本"


def _hist(lo: float, hi: float) -> dict[str, list[float]]:
    step = (hi - lo) / 4
    return {"edges": [lo + i * step for i in range(5)], "counts": [1, 5, 9, 2]}


def make_analysis(**overrides: Any) -> dict[str, Any]:
    analysis: dict[str, Any] = {
        "dataset_id": "0123456789abcdef",
        "created_at": "2026-11-25T10:00:00+00:00",
        "source": {"key": "raw/ward-7.csv"},
        "data_quality": {
            "rows_input": 1234,
            "rows_valid": 1200,
            "rows_rejected": 34,
            "reasons": {"invalid_temp_c": 20, "missing_user_id": 10, "duplicate_reading": 4},
            "rules_profile": "plausible",
            "rejected_key": "rejected/dt=2026-11-25/ward-7-0123456789abcdef_rejected.csv",
        },
        "worst_severity": "high",
        "readings": 1200,
        "time_range": {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-01T06:00:00+00:00"},
        "metrics": {
            "heart_rate": {
                "count": 1200,
                "mean": 77.26,
                "min": 35,
                "median": 76,
                "p95": 99,
                "max": 151,
                "histogram": _hist(35, 155),
            },
            "spo2": {
                "count": 1200,
                "mean": 97.1,
                "min": 86,
                "median": 97,
                "p95": 99,
                "max": 100,
                "histogram": _hist(86, 100),
            },
        },
        "news2_partial": {
            "distribution": {"0": 1000, "1": 150, "3": 50},
            "readings_score_5_or_more": 2,
            "readings_score_7_or_more": 0,
        },
        "bp_categories": {"normal": 700, "elevated": 300, "hypertensive_crisis": 12},
        "anomalies": {
            "total": 321,
            "readings_flagged": 250,
            "by_severity": {"low": 200, "medium": 80, "high": 41},
            "by_kind": {
                "tachycardia_news2_3": 150,
                "low_spo2_news2_2": 100,
                "hypertensive_crisis": 71,
            },
            "top": [
                {
                    "user_id": "u1",
                    "event_time": "2026-11-01T01:00:00+00:00",
                    "metric": "heart_rate",
                    "kind": "tachycardia_news2_3",
                    "severity": "high",
                    "value": 151.0,
                    "rule": "news2",
                },
                {
                    "user_id": "u2",
                    "event_time": "2026-11-01T01:05:00+00:00",
                    "metric": "spo2",
                    "kind": "low_spo2_news2_2",
                    "severity": "medium",
                    "value": 93.0,
                    "rule": "news2",
                },
            ],
            "timeline": [
                {"bucket": "2026-11-01T00:00:00+00:00", "severity": "high", "count": 10},
                {"bucket": "2026-11-01T00:00:00+00:00", "severity": "low", "count": 40},
                {"bucket": "2026-11-01T01:00:00+00:00", "severity": "medium", "count": 12},
            ],
        },
        "episodes": {
            "total": 2,
            "list": [
                {
                    "user_id": "u1",
                    "metric": "heart_rate",
                    "kind": "tachycardia_news2_3",
                    "severity": "high",
                    "readings": 12,
                    "start_time": "2026-11-01T01:00:00+00:00",
                    "end_time": "2026-11-01T02:10:00+00:00",
                    "peak_value": 151.0,
                    "duration_s": 4200.0,
                },
                {
                    "user_id": "u2",
                    "metric": "spo2",
                    "kind": "low_spo2_news2_2",
                    "severity": "medium",
                    "readings": 4,
                    "start_time": "2026-11-01T03:00:00+00:00",
                    "end_time": "2026-11-01T03:03:00+00:00",
                    "peak_value": 92.0,
                    "duration_s": 180.0,
                },
            ],
        },
        "users": {
            "total": 3,
            "flagged": 2,
            "top": [
                {
                    "user_id": "u1",
                    "readings": 400,
                    "anomalies": 200,
                    "high": 30,
                    "medium": 50,
                    "low": 120,
                    "episodes": 1,
                    "worst": "high",
                    "risk_score": 0.7,
                },
                {
                    "user_id": "u2",
                    "readings": 400,
                    "anomalies": 121,
                    "high": 11,
                    "medium": 30,
                    "low": 80,
                    "episodes": 1,
                    "worst": "high",
                    "risk_score": 0.43,
                },
            ],
        },
        "analyst": {
            "provider": "bedrock",
            "model": "amazon.nova-lite-v1:0",
            "fallback_reason": None,
        },
        "usage": {"input_tokens": 900, "output_tokens": 300, "cost_usd": 0.0001},
        "grounding": {"dropped": []},
        "insights": ["P01 had a sustained tachycardia episode."],
        "recommendations": ["Review P01 first."],
        "summary": "Overall risk is high.",
        "risk_level": "high",
        "disclaimer": "Triage support only; not a diagnosis.",
    }
    analysis.update(overrides)
    return analysis


def typed(analysis: dict[str, Any]) -> Analysis:
    """The hand-made analysis as the document the report builders take."""
    return Analysis.model_validate(analysis)


def hostile_analysis() -> dict[str, Any]:
    analysis = make_analysis()
    analysis["source"] = {"key": f"raw/{HOSTILE_ID}{NON_ASCII}.csv"}
    for item in analysis["users"]["top"] + analysis["episodes"]["list"]:
        item["user_id"] = HOSTILE_ID + LONG if item["user_id"] == "u1" else NON_ASCII
    analysis["anomalies"]["top"][0]["user_id"] = HOSTILE_ID
    analysis["insights"] = [HOSTILE_ID, LONG, f"{NON_ASCII} <b>bold</b> & more"]
    analysis["recommendations"] = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0"]
    analysis["summary"] = "<img src=x onerror=alert(1)> summary\r\nBcc: victim@example.com"
    return analysis


def small_charts() -> list[Chart]:
    return report_charts(typed(make_analysis()))


@pytest.fixture(scope="module")
def charts() -> list[Chart]:
    return small_charts()


def _message(analysis: dict[str, Any], charts: list[Chart], **kw: Any) -> EmailMessage:
    model = build_report_model(typed(analysis), secret=SECRET, **kw)
    raw = build_message(model, charts, sender="hp@example.org", recipients=["a@example.org"])
    parsed = message_from_bytes(raw.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.tags: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.in_style = self.in_style or tag == "style"
        if tag == "img":
            self.imgs.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if not self.in_style:  # a <style> block's rules are not shown
            self.chunks.append(data)


def parse_html(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    return parser


def test_structure_alternative_then_related_with_every_cid_attached(charts: list[Chart]) -> None:
    # GIVEN an analysis WHEN the report email is built THEN text/plain comes first, then
    # multipart/related holding the HTML and one inline PNG per chart, each cid resolving.
    message = _message(make_analysis(), charts)
    assert message.get_content_type() == "multipart/alternative"
    first, second = list(message.iter_parts())
    assert first.get_content_type() == "text/plain"
    assert second.get_content_type() == "multipart/related"
    related = list(second.iter_parts())
    assert related[0].get_content_type() == "text/html"
    images = {str(p["Content-ID"]).strip("<>"): p for p in related[1:]}
    assert all(p.get_content_type() == "image/png" for p in images.values())
    html = parse_html(_parts(message)[1])
    cids = [str(i["src"])[4:] for i in html.imgs]
    assert len(cids) == 4 and set(cids) == set(images)
    for img in html.imgs:
        assert img.get("alt") and len(str(img["alt"])) > 20
    for part in images.values():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes) and payload[:8] == b"\x89PNG\r\n\x1a\n"
    assert "script" not in html.tags


def test_text_part_carries_the_html_numbers(charts: list[Chart]) -> None:
    text, html = _parts(_message(make_analysis(), charts))
    visible = " ".join(parse_html(html).chunks)
    for figure in (
        "1,234",
        "1,200",
        "34",
        "97.2%",
        "321",
        "41",
        "80",
        "200",
        "250",
        "20.8%",
        "0.7",
        "151 bpm",
        "1 h 10 min",
        "3 min",
        "92 %",
    ):
        assert figure in visible, figure
        assert figure in text, figure
    numbers = re.compile(r"\d[\d,.]*\d%?|\d%?")
    missing = set(numbers.findall(visible)) - set(numbers.findall(text))
    assert not missing, f"numbers shown in HTML but not in text: {sorted(missing)}"


def test_report_names_the_clinical_references_and_disclaimer(charts: list[Chart]) -> None:
    text, html = _parts(_message(make_analysis(), charts))
    for part in (text, html):
        assert "NEWS2" in part and "ACC/AHA 2017" in part
        assert "Tachycardia (NEWS2 3)" in part and "heart rate ≥ 131 bpm" in part
        assert "not a diagnosis" in part.lower()
        assert "bedrock" in part and "amazon.nova-lite-v1:0" in part  # provenance
        assert "rejected/dt=2026-11-25/ward-7-0123456789abcdef_rejected.csv" in part
        assert "Temperature: implausible or unreadable" in part


def test_participants_are_pseudonymised_with_analyst_refs(charts: list[Chart]) -> None:
    text, html = _parts(_message(make_analysis(), charts))
    label = pseudonym("u1", SECRET)
    for part in (text, html):
        assert label in part and "P01" in part
        assert not re.search(r"\bu1\b", part)


def test_subject_states_date_dataset_and_worst_severity(charts: list[Chart]) -> None:
    subject = str(_message(make_analysis(), charts)["Subject"])
    assert "2026-11-25" in subject and "0123456789abcdef" in subject
    assert "worst severity: high" in subject


def test_every_line_of_every_part_is_within_998(charts: list[Chart]) -> None:
    message = _message(hostile_analysis(), charts, reveal_ids=True)
    raw = message.as_bytes()
    assert max(len(line) for line in raw.split(b"\n")) <= 998
    text, html = _parts(message)
    assert max(len(line) for line in text.splitlines()) <= 998
    assert max(len(line) for line in html.splitlines()) <= 998


def test_hostile_values_are_escaped_or_neutralised_in_both_parts(charts: list[Chart]) -> None:
    # GIVEN ids, a file name and model output carrying markup, formulas, huge and non-ASCII
    # strings; WHEN rendered with ids revealed (the worst case) THEN nothing is live markup.
    message = _message(hostile_analysis(), charts, reveal_ids=True)
    text, html = _parts(message)
    parsed = parse_html(html)
    assert "script" not in parsed.tags and "b" not in parsed.tags
    assert all(str(i["src"]).startswith("cid:") for i in parsed.imgs)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "onerror" not in " ".join(str(v) for i in parsed.imgs for v in i.values())
    assert NON_ASCII in text and NON_ASCII in html
    assert LONG not in text and LONG not in html  # bounded
    for part in (text, html.replace("&#34;", '"').replace("&#39;", "'")):
        for line in part.splitlines():
            cell = line.strip().removeprefix("- ").strip()
            assert not cell.startswith(("=HYPERLINK", "+cmd")), line
        assert "'=HYPERLINK" in part and "'+cmd" in part
    assert "Bcc: victim" not in "\n".join(line[:5] for line in text.splitlines())
    assert "\r" not in str(message["Subject"]) and "\n" not in str(message["Subject"])


def test_ids_hidden_by_default_even_when_hostile(charts: list[Chart]) -> None:
    analysis = hostile_analysis()
    analysis["source"] = {"key": "raw/ward-7.csv"}
    analysis["insights"] = analysis["recommendations"] = []
    text, html = _parts(_message(analysis, charts))
    for part in (text, html):
        assert 'HYPERLINK("http://evil","click")' not in part.replace("&#34;", '"')
        assert pseudonym(NON_ASCII, SECRET) in part


def test_oversized_message_degrades_charts_then_drops_them(charts: list[Chart]) -> None:
    model = build_report_model(typed(make_analysis()), secret=SECRET)
    full = build_message(model, charts, sender="a@b.c", recipients=["d@e.f"])
    full_size = len(full.as_bytes())
    text_only = build_message(model, [], sender="a@b.c", recipients=["d@e.f"])
    limit = len(text_only.as_bytes()) + 2000
    fitted = build_message(model, charts, sender="a@b.c", recipients=["d@e.f"], max_bytes=limit)
    assert len(fitted.as_bytes()) <= limit < full_size
    _, html = _parts(fitted)
    images = [p for p in fitted.walk() if p.get_content_maintype() == "image"]
    assert len(images) < len(charts)
    cids = {str(p["Content-ID"]).strip("<>") for p in images}
    assert {str(i["src"])[4:] for i in parse_html(html).imgs} == cids
    assert "left out" in html
    with pytest.raises(MessageTooLarge):
        build_message(model, charts, sender="a@b.c", recipients=["d@e.f"], max_bytes=1000)


def test_downscaled_chart_is_a_smaller_png(charts: list[Chart]) -> None:
    small = downscaled(charts[0], 0.5)
    assert small.png[:8] == b"\x89PNG\r\n\x1a\n" and len(small.png) < len(charts[0].png)


def test_saved_html_embeds_images_as_data_uris(charts: list[Chart]) -> None:
    model = build_report_model(typed(make_analysis()), secret=SECRET)
    html = render_html(model, charts, inline_images=True)
    srcs = [str(i["src"]) for i in parse_html(html).imgs]
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_empty_analysis_renders_without_charts_data() -> None:
    analysis = make_analysis()
    analysis["anomalies"] = {
        "total": 0,
        "readings_flagged": 0,
        "by_severity": {},
        "by_kind": {},
        "top": [],
        "timeline": [],
    }
    analysis["episodes"] = {"total": 0, "list": []}
    analysis["data_quality"]["reasons"] = {}
    analysis["worst_severity"] = "none"
    charts = report_charts(typed(analysis))
    assert len(charts) == 4 and all(c.png.startswith(b"\x89PNG") for c in charts)
    text = render_text(build_report_model(typed(analysis), secret=SECRET))
    assert "EPISODES (0;" in text and "\n  none\n" in text


def test_alert_lists_only_findings_at_or_above_the_threshold() -> None:
    analysis = make_analysis()
    assert alert_count(typed(analysis), "high") == 41
    assert alert_count(typed(analysis), "medium") == 121
    assert alert_count(typed(analysis), "never") == 0
    model = build_alert_model(
        typed(analysis), secret=SECRET, threshold="high", report_key="reports/x.html"
    )
    message = build_alert_message(model, sender="a@b.c", recipients=["d@e.f"])
    assert str(message["Subject"]).startswith("[ALERT] ")
    assert "0123456789abcdef" in str(message["Subject"])
    text, html = _parts(message)
    for part in (text, html):
        assert "Tachycardia" in part and "151 bpm" in part
        assert "Low oxygen saturation" not in part  # medium: below the threshold
        assert pseudonym("u1", SECRET) in part


def test_alert_escapes_hostile_values_and_keeps_ids_pseudonymous() -> None:
    analysis = hostile_analysis()
    analysis["source"] = {"key": "raw/<img src=x onerror=alert(1)>Zoë.csv"}
    model = build_alert_model(
        typed(analysis), secret=SECRET, threshold="medium", report_key="reports/x.html"
    )
    message = build_alert_message(model, sender="a@b.c", recipients=["d@e.f"])
    text, html = _parts(message)
    assert "img" not in parse_html(html).tags
    assert "&lt;img src=x onerror=alert(1)&gt;Zoë.csv" in html
    for part in (text, html):
        assert 'HYPERLINK("http://evil","click")' not in part.replace("&#34;", '"')
        assert pseudonym(HOSTILE_ID, SECRET) in part
    assert max(len(line) for line in message.as_bytes().split(b"\n")) <= 998


def test_neutralise_rules() -> None:
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    # one policy with the CSVs (domain/formula.py): only a plain number keeps a leading sign
    assert neutralise("-12% fewer readings") == "'-12% fewer readings"
    assert neutralise("-12") == "-12"
    assert neutralise("+cmd") == "'+cmd"
    assert neutralise("a\r\nb\u202ec") == "a b c"
    assert len(neutralise("x" * 500, 50)) == 50
    assert neutralise(copy.copy(NON_ASCII)) == NON_ASCII
