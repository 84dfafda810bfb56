"""The report's "Compared with the last N days" section: flagged trends across uploads, each
with its criterion and a sparkline of the participant's daily medians.

The sparkline is an inline SVG polyline whose points are numbers formatted here (no text from
the data reaches the markup; Jinja2 escapes it anyway), and a row of block characters for the
text part: no chart image, so the section costs no rendering time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from healthpipe.domain.brief import number_text, plural
from healthpipe.domain.documents import Trend, Trends
from healthpipe.report import labels as lb
from healthpipe.report.safe import neutralise

SPARK_WIDTH, SPARK_HEIGHT = 120, 24
BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class TrendRow:
    ref: str
    who: str
    vital: str
    change: str  # "+15.2 bpm over 14 days (+1.086 bpm/day)"
    values: str  # "from 74.1 to 89.3 bpm (daily medians of 14 days with readings)"
    criterion: str
    points: str  # SVG polyline points
    blocks: str  # the same series as block characters


@dataclass(frozen=True)
class TrendsView:
    window_days: int
    rows: list[TrendRow]
    note: str


def spark_points(
    values: Sequence[float], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT
) -> str:
    """'x,y x,y …' of `values` scaled into a width × height box (y down, 1 px margin)."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = (width - 2) / max(1, len(values) - 1)
    return " ".join(
        f"{1 + i * step:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}"
        for i, v in enumerate(values)
    )


def spark_blocks(values: Sequence[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - lo) / span * top)] for v in values)


def _row(trend: Trend, ref: str, who: str) -> TrendRow:
    unit = lb.metric_unit(trend.metric)
    daily = [float(v) for v in trend.daily]
    return TrendRow(
        ref=ref,
        who=who,
        vital=lb.METRIC_LABELS.get(trend.metric, (trend.metric, ""))[0],
        change=(
            f"{float(trend.change):+g} {unit} over {trend.span_days} days "
            f"({float(trend.slope_per_day):+g} {unit}/day)"
        ),
        values=(
            f"from {number_text(trend.start)} to {number_text(trend.end)} {unit} "
            f"(fitted to the daily medians of {plural(trend.days, 'day')} with readings, "
            f"{neutralise(trend.first_day, 10)} → {neutralise(trend.last_day, 10)})"
        ),
        criterion=neutralise(trend.criterion, 300),
        points=spark_points(daily),
        blocks=spark_blocks(daily),
    )


def trends_view(
    trends: Trends | None, ref: Callable[[str], str], who: Callable[[str], str]
) -> TrendsView | None:
    """The section, or None for an analysis without trends (before issue 18, or no history)."""
    if trends is None:
        return None
    rows = [_row(t, ref(t.user_id), who(t.user_id)) for t in trends.flagged]
    assessed = trends.participants_assessed
    if rows:
        note = (
            f"{plural(len(rows), 'trend')} crossed a threshold among "
            f"{plural(assessed, 'participant')} with enough days of data."
        )
    elif not assessed:
        note = (
            "Not assessed yet: no participant has enough days with readings (a rule needs "
            "70 % of its span's days)."
        )
    else:
        note = (
            f"No trend crossed a threshold among {plural(assessed, 'participant')} with enough "
            "days of data (at least 70 % of a rule's span with readings). This is about "
            "change over days only: single readings are judged by the findings above."
        )
    return TrendsView(
        window_days=trends.window_days,
        rows=rows,
        note=note,
    )
