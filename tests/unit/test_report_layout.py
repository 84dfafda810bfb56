"""The report's layout, charts and numbers: readable text, separators, the severity/risk legend.

Layout in a real browser (390 and 1280 px): tests/browser/test_browser_report.py.
"""

from __future__ import annotations

import io
from html.parser import HTMLParser
from typing import Any

import pytest
from test_report_render import SECRET, make_analysis, typed

from healthpipe.analysts.builtin import risk_level
from healthpipe.domain.documents import Brief
from healthpipe.report import charts
from healthpipe.report.browse import ReportCard, render_index
from healthpipe.report.model import build_report_model
from healthpipe.report.render import (
    RISK_LEGEND,
    SEVERITY_LEGEND,
    group_digits,
    render_html,
    render_text,
    thousands,
)

MIN_CSS_PX = 11.0


def _drawn_figures(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, bytes]]:
    """Records every figure the charts module saves, with its PNG."""
    drawn: list[tuple[Any, bytes]] = []
    finish = charts._finish

    def spy(fig: Any) -> bytes:
        png = finish(fig)
        drawn.append((fig, png))
        return png

    monkeypatch.setattr(charts, "_finish", spy)
    charts._drawn.cache_clear()  # a chart drawn by an earlier test would not be drawn again
    return drawn


def _smallest_text_pt(fig: Any) -> float:
    from matplotlib.text import Text

    sizes = [
        t.get_fontsize()
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_figure() is not None
    ]
    return min(sizes)


def test_every_chart_text_reads_at_least_11_css_px_where_the_report_shows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PIL import Image

    # GIVEN every chart of a report and of a digest
    drawn = _drawn_figures(monkeypatch)
    trend = charts.trend_chart({"high": 3, "medium": 12, "low": 40}, {"high": 1, "low": 9})
    made = [*charts.report_charts(typed(make_analysis())), trend]
    assert len(drawn) == len(made) == 5
    for (fig, png), chart in zip(drawn, made, strict=True):
        with Image.open(io.BytesIO(png)) as image:
            png_width = image.width
        # WHEN the PNG is shown `chart.width_px` CSS px wide (the HTML's width and max-width)
        image_px_per_point = png_width / fig.get_figwidth() / 72.0
        css_px_per_image_px = chart.width_px / png_width
        smallest = _smallest_text_pt(fig) * image_px_per_point * css_px_per_image_px
        # THEN its smallest text (ticks, legends, labels) is at least 11 CSS px tall
        assert smallest >= MIN_CSS_PX, (chart.cid, round(smallest, 1))
        # and the image has two pixels per CSS pixel, for high-density screens
        assert png_width == 2 * chart.width_px, (chart.cid, png_width)


def test_a_retried_report_draws_each_chart_once_and_new_numbers_draw_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a report's charts, drawn
    drawn = _drawn_figures(monkeypatch)
    analysis = typed(make_analysis())
    first = charts.report_charts(analysis)
    assert len(drawn) == 4
    # WHEN the same report is built again (a retried notify), from an equal analysis
    again = charts.report_charts(typed(make_analysis()))
    # THEN nothing is drawn again and the PNGs are the same bytes
    assert len(drawn) == 4
    assert [c.png for c in again] == [c.png for c in first]
    # WHEN one chart's numbers change (one more rejected row)
    reasons = dict(analysis.data_quality.reasons)
    reasons["missing_value"] = reasons.get("missing_value", 0) + 1
    changed = analysis.model_copy(
        update={"data_quality": analysis.data_quality.model_copy(update={"reasons": reasons})}
    )
    redrawn = charts.report_charts(changed)
    # THEN that chart alone is drawn anew, and differs
    assert len(drawn) == 5
    assert redrawn[3].png != first[3].png
    assert [c.png for c in redrawn[:3]] == [c.png for c in first[:3]]


def test_css_px_matches_the_drawn_figures() -> None:
    assert charts.css_px(charts.SMALL_PT) == pytest.approx(12.5)
    assert charts.css_px(charts.SMALL_PT) >= MIN_CSS_PX


class _Tables(HTMLParser):
    """Each data table (not a role=presentation layout table) and whether a scroll box holds it."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.tables: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "table" and attributes.get("role") != "presentation":
            self.tables.append(
                any(
                    t == "div" and "overflow-x:auto" in a.get("style", "").replace(" ", "")
                    for t, a in self.stack
                )
            )
        if tag not in ("br", "img", "meta", "hr"):
            self.stack.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break


def test_every_data_table_of_the_report_and_index_scrolls_inside_its_own_box() -> None:
    model = build_report_model(typed(make_analysis()), secret=SECRET)
    card = ReportCard("0123456789abcdef", "report", "2026-11-25T10:00:00", "t", "high", 3, 9)
    for html in (render_html(model, [], inline_images=True), render_index([card], 1)):
        parser = _Tables()
        parser.feed(html)
        assert parser.tables, "no data table found"
        assert all(parser.tables), parser.tables


def test_counts_in_the_analyst_text_get_thousands_separators_in_both_parts() -> None:
    # GIVEN an analyst text that writes counts without separators (the builtin analyst does)
    analysis = make_analysis(
        summary="331479 of 867420 readings had a finding (38.2%).",
        insights=["12000 findings were high severity; see ACC/AHA 2017, at 2026-11-01 10:00."],
        recommendations=["Review the 10500 flagged readings."],
    )
    model = build_report_model(typed(analysis), secret=SECRET)
    for part in (render_html(model, [], inline_images=True), render_text(model)):
        # THEN every part shows them with separators, and leaves years, dates and times alone
        assert "331,479 of 867,420 readings" in part
        assert "12,000 findings" in part and "10,500 flagged" in part
        assert "ACC/AHA 2017" in part and "2026-11-01 10:00" in part
        assert "331479" not in part and "867420" not in part


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("331479 of 867420 readings", "331,479 of 867,420 readings"),
        ("1371 high and 99999.", "1,371 high and 99,999."),
        ("mean 12345.67 bpm", "mean 12,345.67 bpm"),
        ("already 1,234,567", "already 1,234,567"),
        ("at 2026-01-03 10:00 UTC", "at 2026-01-03 10:00 UTC"),
        ("ACC/AHA 2017, RCP 2017", "ACC/AHA 2017, RCP 2017"),
        ("P-12345678, id ab123456, 1.23456", "P-12345678, id ab123456, 1.23456"),
        ("(12000)", "(12,000)"),
        ("999 of 1000", "999 of 1,000"),
    ],
)
def test_group_digits_groups_counts_in_prose_and_nothing_else(text: str, expected: str) -> None:
    assert group_digits(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (867420, "867,420"),
        ("867420", "867,420"),
        (3.0, "3"),
        ("97.8%", "97.8%"),
        ("1,234", "1,234"),
    ],
)
def test_thousands_formats_whole_numbers_and_passes_formatted_text(
    value: object, expected: str
) -> None:
    assert thousands(value) == expected


def test_reports_index_total_has_thousands_separators() -> None:
    card = ReportCard("0123456789abcdef", "report", "2026-11-25T10:00:00", "t", "high", 12345, 6)
    html = render_index([card], 12345)
    assert "Reports (12,345)" in html
    assert "12,345" in html.split("Reports (12,345)", 1)[1]  # the card's findings


def test_report_explains_worst_severity_and_overall_risk_in_both_parts() -> None:
    model = build_report_model(typed(make_analysis()), secret=SECRET)
    html, text = render_html(model, [], inline_images=True), " ".join(render_text(model).split())
    for legend in (SEVERITY_LEGEND, RISK_LEGEND):
        assert legend.replace("'", "&#39;") in html
        assert legend in text


def _brief(readings: int, high: int = 0, medium: int = 0, crisis_episodes: int = 0) -> Brief:
    assessment = {"assessable": readings > 0, "status": "assessed"}
    return Brief.model_validate(
        {
            "assessment": assessment,
            "data_quality": {},
            "readings": readings,
            "anomalies": {"by_severity": {"high": high, "medium": medium, "low": 3}},
            "episodes": {
                "by_kind": {"hypertensive_crisis": crisis_episodes} if crisis_episodes else {}
            },
        }
    )


def test_the_risk_legend_states_the_builtin_analysts_rule() -> None:
    # The legend's words, case by case, against `risk_level`:
    assert "critical when there is a hypertensive-crisis episode" in RISK_LEGEND
    assert risk_level(_brief(1000, high=1, crisis_episodes=1)) == "critical"
    assert "or high-severity findings reach 5% of valid readings" in RISK_LEGEND
    assert risk_level(_brief(100, high=5)) == "critical"
    assert "high when there is any other high-severity finding" in RISK_LEGEND
    assert risk_level(_brief(100, high=4)) == "high"
    assert "moderate when the worst finding is medium" in RISK_LEGEND
    assert risk_level(_brief(100, medium=7)) == "moderate"
    assert "and low otherwise" in RISK_LEGEND
    assert risk_level(_brief(100)) == "low"
