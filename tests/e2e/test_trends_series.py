"""Issue 18 acceptance: a 30-day generated series (one file per day, 50 participants, one
participant with a resting-HR drift of +15 bpm over two weeks and one with BP moving into
stage 1) flags exactly those two trends, and no trend in the others.

The files come from `healthpipe generate --days 30 --drift …` and go, in day order, through
the real ingest and analyze stages on the local runtime (folder store, SQLite history): the
trends are analyze's. Notify is left out to keep the test cheap (it renders four charts per
file and has no part in trends); the last file's report is rendered here, without charts.
Kept cheap: 24 readings per participant per day (1,200 rows a file), run once per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from healthpipe.bootstrap import build_local
from healthpipe.cli import app
from healthpipe.config import load_settings
from healthpipe.domain.documents import Analysis, ProcessingComplete
from healthpipe.domain.identity import analysis_key
from healthpipe.orchestration.runs import upload_event, upload_raw
from healthpipe.report.model import build_report_model
from healthpipe.report.render import render_html, render_text
from healthpipe.stages.analyze import analyze, analyze_again
from healthpipe.stages.ingest import ingest

pytestmark = [pytest.mark.xdist_group("trends_series"), pytest.mark.clock]

DAYS, USERS, PER_DAY = 30, 50, 24
HR_USER, BP_USER = "user_003", "user_009"  # base systolic 127 mmHg: +12 reaches 139
DRIFTS = (f"{HR_USER}:heart_rate:+15:14", f"{BP_USER}:systolic_bp:+12:28")
LAST: dict[str, Any] = {}


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Analysis], str]]:
    """The 30 analyses, oldest first, and the pseudonym secret (the workspace and the last
    file's event in `LAST`)."""
    root = tmp_path_factory.mktemp("series")
    end = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    args = ["generate", "--out", str(root / "in" / "vitals.csv"), "--rows", str(USERS * PER_DAY)]
    args += ["--users", str(USERS), "--days", str(DAYS), "--end", end.isoformat(), "--seed", "7"]
    for drift in DRIFTS:
        args += ["--drift", drift]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    files = sorted((root / "in").glob("vitals-*.csv"))
    assert len(files) == DAYS
    settings = load_settings({"workspace": root / "ws", "analyst": "builtin"})
    runtime = build_local(settings)
    try:
        analyses = []
        for source in files:
            ingested = ingest(upload_event(runtime, upload_raw(runtime, source)), runtime.ports)
            (processed,) = ingested.events
            analyze(processed, runtime.ports)
            dataset_id = str(processed.detail["dataset_id"])
            analyses.append(runtime.store.get_document(analysis_key(dataset_id), Analysis))
        LAST.update(workspace=root / "ws", event=processed)
        yield analyses, runtime.ports.analyze_settings.pseudonym_secret
    finally:
        runtime.close()


def flagged(analysis: Analysis) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for trend in analysis.trends.flagged if analysis.trends else []:
        found.setdefault(trend.user_id, set()).add(trend.rule)
    return found


def test_the_last_day_flags_exactly_the_two_drifting_participants(
    series: tuple[list[Analysis], str],
) -> None:
    analyses, _ = series
    last = analyses[-1]
    assert last.trends is not None
    assert last.trends.window_days == 28
    assert last.trends.participants_assessed == USERS
    assert flagged(last) == {HR_USER: {"resting_hr_rise"}, BP_USER: {"bp_into_stage_1"}}
    (hr,) = [t for t in last.trends.flagged if t.user_id == HR_USER]
    assert hr.change >= 10 and hr.span_days == 14
    (bp,) = [t for t in last.trends.flagged if t.user_id == BP_USER]
    assert bp.start < 130 <= bp.end


def test_no_file_of_the_series_flags_anyone_else(series: tuple[list[Analysis], str]) -> None:
    analyses, _ = series
    others = {
        (a.time_range.start, user)
        for a in analyses
        for user in flagged(a)
        if user not in (HR_USER, BP_USER)
    }
    assert others == set()
    assert analyses[0].trends is not None and analyses[0].trends.flagged == []  # one day


def test_the_last_report_and_text_name_the_trends_by_pseudonym(
    series: tuple[list[Analysis], str],
) -> None:
    analyses, secret = series
    last = analyses[-1]
    assert sum("daily median" in line for line in last.insights) == 2
    trends = "2 trends crossed a threshold compared with the last 28 days ("
    if last.risk_level in ("low", "moderate"):  # the trends lead: "low" is not "all clear"
        assert last.summary.startswith(trends)
    else:
        assert trends in last.summary and last.summary.endswith("review them.")
    model = build_report_model(last, secret=secret)
    text, html = render_text(model), render_html(model, [], inline_images=True)
    assert "COMPARED WITH THE LAST 28 DAYS" in text
    assert html.count("<polyline") == 2
    for raw in (HR_USER, BP_USER):
        assert raw not in text and raw not in html


def test_the_last_file_analysed_in_groups_has_the_same_histories_and_trends(
    series: tuple[list[Analysis], str],
) -> None:
    # issue 17: the history phase runs one group of participants at a time over the file's
    # window (memory of a group, not of the file): the same baselines, trends and findings
    analyses, _ = series
    whole = analyses[-1]
    settings = load_settings(
        {
            "workspace": LAST["workspace"],
            "analyst": "builtin",
            "analyze_group_rows": 300,
            "workers": 1,
        }
    )
    runtime = build_local(settings)
    try:
        detail = ProcessingComplete.model_validate(LAST["event"].detail)
        analyze_again(detail, runtime.ports)
        grouped = runtime.store.get_document(analysis_key(str(detail.dataset_id)), Analysis)
    finally:
        runtime.close()
    assert "split_ms" in grouped.timings and "split_ms" not in whole.timings
    assert grouped.trends == whole.trends and flagged(grouped) == flagged(whole) != {}
    assert grouped.users == whole.users
    assert any(p.has_history for p in grouped.users.top)
    assert grouped.anomalies == whole.anomalies and grouped.episodes == whole.episodes
