"""The participant history page (`healthpipe history`) in a real headless Chromium: it fits a
390 px phone and a 1280 px desktop (wide tables scroll inside their own box), and its chart
loads. The page is rendered from a hand-made history (30 days, long names, many rows): no
pipeline run. Skips without Chromium unless HEALTHPIPE_REQUIRE_BROWSER=1, as
test_browser_report.py does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from chromium_cdp import Chromium

from healthpipe.domain.documents.participant_timeline import (
    FindingKind,
    HistoryEpisode,
    ParticipantTimeline,
    SourceFile,
    VitalDay,
    VitalHistory,
)
from healthpipe.report.charts import vitals_history_chart
from healthpipe.report.history import build_history_view, render_history_html

# one worker runs the whole module: its browser and page are made once, not per worker
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser_history")]

PHONE, DESKTOP = 390, 1280
LONG_NAME = "ward-7-" + "x" * 60 + ".csv"  # no break opportunity: must not widen the page
VITALS = {
    "heart_rate": 72,
    "spo2": 97,
    "steps": 1234,
    "temp_c": 36.7,
    "systolic_bp": 128,
    "diastolic_bp": 81,
}


def timeline(days: int = 30) -> ParticipantTimeline:
    start = date(2025, 6, 1)
    vitals = [
        VitalHistory(
            metric=metric,
            n=24 * days,
            median=base,
            min=base * 0.8,
            max=base * 1.2,
            latest=base,
            latest_time=f"{start + timedelta(days=days - 1)}T23:59:00Z",
            days=[
                VitalDay(
                    day=(start + timedelta(days=i)).isoformat(),
                    n=24,
                    median=base + i % 5,
                    min=base * 0.8,
                    max=base * 1.2,
                )
                for i in range(days)
            ],
        )
        for metric, base in VITALS.items()
    ]
    finding = FindingKind(
        kind="hypertension_stage_1",
        metric="systolic_bp",
        label="Hypertension stage 1",
        reference="ACC/AHA 2017",
        criterion="systolic 130–139 or diastolic 80–89 mmHg",
        total=12345,
        by_severity={"low": 12345},
    )
    episode = HistoryEpisode(
        kind="tachycardia_news2_3",
        metric="heart_rate",
        severity="high",
        readings=40,
        start_time="2025-06-03T10:00:00+00:00",
        end_time="2025-06-04T01:00:00+00:00",
        worst_value=150,
    )
    files = [
        SourceFile(
            dataset_id=f"{i:016x}",
            name=LONG_NAME,
            analysed="2026-11-30",
            readings=24,
            findings=3,
            first_reading=f"{start + timedelta(days=i)}T00:00:00Z",
            last_reading=f"{start + timedelta(days=i)}T23:00:00Z",
        )
        for i in range(days)
    ]
    return ParticipantTimeline(
        pseudonym="P-0123456789abcdef",
        readings=24 * days,
        first_reading=files[0].first_reading,
        last_reading=files[-1].last_reading,
        vitals=vitals,
        findings=[finding],
        findings_total=finding.total,
        trends_assessed=True,
        episodes=[episode] * 60,
        episodes_total=60,
        files=files,
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("HEALTHPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail("HEALTHPIPE_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with Chromium(path, tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    history = timeline()
    html = render_history_html(build_history_view(history), [vitals_history_chart(history.vitals)])
    path = tmp_path_factory.mktemp("history-page") / "history.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_history_page_fits_the_viewport(browser: Chromium, page: Path, width: int) -> None:
    browser.open(page.as_uri(), width)
    inner, scroll = browser.evaluate("[innerWidth, document.documentElement.scrollWidth]")
    assert inner == width and scroll <= inner, (inner, scroll)
    overflowing = browser.evaluate(
        "Array.from(document.querySelectorAll('body *'))"
        ".filter(e => !e.closest('.hp-scroll'))"
        ".filter(e => e.getBoundingClientRect().right > innerWidth + 0.5)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert overflowing == [], overflowing
    loaded = browser.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert len(loaded) == 1 and loaded[0] > 0, loaded
