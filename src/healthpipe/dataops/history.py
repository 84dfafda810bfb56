"""One participant's history from the lake: `healthpipe history PARTICIPANT` (docs/lake.md).

Reads only the lake's two views (`readings`, `findings`) through `Lake.query`, so it needs no
file layout (it works whether or not the lake has a participant-bucket partition) and runs
under the lake's read-only locks. The participant is given as a raw id or as a pseudonym:

- a raw id is looked up as it is, in `readings.user_id`;
- a pseudonym (`P-` + 16 hex) is resolved by computing the pseudonym of each distinct
  `user_id` in the lake under the workspace's secret (`identity.pseudonym`, as analyze keys
  the store). One HMAC per participant: about a second per million participants, fine at
  lake scale; nothing maps a pseudonym back to an id otherwise.

The raw id goes into the SQL as a quoted literal (never into a log line: `Lake.query` logs
counts and timings only) and into no output: the document names the participant by
pseudonym.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.lake import Lake, QueryResult
from healthpipe.domain import clinical
from healthpipe.domain import history as stored
from healthpipe.domain.documents.history import DayHistogram
from healthpipe.domain.documents.participant_timeline import (
    FindingKind,
    ParticipantTimeline,
    SourceFile,
    TimelineBaseline,
    TimelineTrend,
    VitalDay,
    VitalHistory,
)
from healthpipe.domain.identity import bucket_of_pseudonym, pseudonym
from healthpipe.domain.trends import flagged_trends
from healthpipe.domain.validation_sql import quote_literal

PSEUDONYM_SHAPE = re.compile(r"P-[0-9a-f]{16}")
# the reading's day: its event time in UTC (the connection's TimeZone is UTC)
READING_DAY = "strftime(event_time, '%Y-%m-%d')"
# Findings as the reports count them (`Analysis.headline_by_kind`): a baseline deviation on a
# reading that also has a clinical finding is not counted again.
HEADLINE = "NOT (kind = 'baseline_deviation' AND coalesce(with_clinical_finding, false))"


def resolve_participant(
    lake: Lake, given: str, secret: str, limits: EngineLimits | None = None
) -> str | None:
    """The lake's `user_id` that `given` names (the id itself, or its pseudonym), or None."""
    rows = lake.query("SELECT DISTINCT user_id FROM readings", limits).rows
    ids = {str(row[0]) for row in rows if row[0] is not None}
    if given in ids:
        return given
    if PSEUDONYM_SHAPE.fullmatch(given):
        for user_id in ids:
            if pseudonym(user_id, secret) == given:
                return user_id
    return None


def participant_timeline(
    lake: Lake, user_id: str, label: str, limits: EngineLimits | None = None
) -> ParticipantTimeline:
    """The participant's readings per vital (overall and per reading day), findings by kind
    and source files, from the lake; `label` (the pseudonym) is the only name it carries.
    Episodes and upload names come from the analysis store (the caller adds them)."""
    who = f"user_id = {quote_literal(user_id)}"
    mine = _readings_filter(lake, who, label, limits)
    vitals = _vitals(lake.query(_vitals_sql(mine), limits), lake.query(_days_sql(mine), limits))
    findings = _findings(
        lake.query(
            f"SELECT kind, metric, severity, count(*) FROM findings WHERE {who} AND {HEADLINE} "
            "GROUP BY ALL ORDER BY ALL",
            limits,
        )
    )
    found_per_file = {
        str(dataset_id): int(n)
        for dataset_id, n in lake.query(
            f"SELECT dataset_id, count(*) FROM findings WHERE {who} AND {HEADLINE} GROUP BY ALL",
            limits,
        ).rows
    }
    files = [
        SourceFile(
            dataset_id=str(dataset_id),
            readings=int(n),
            findings=found_per_file.get(str(dataset_id), 0),
            first_reading=_iso(first),
            last_reading=_iso(last),
        )
        for dataset_id, n, first, last in lake.query(
            "SELECT dataset_id, count(*), min(event_time), max(event_time) "
            f"FROM readings WHERE {mine} GROUP BY dataset_id ORDER BY min(event_time), dataset_id",
            limits,
        ).rows
    ]
    assessed, trends = timeline_trends(label, vitals)
    return ParticipantTimeline(
        pseudonym=label,
        readings=sum(f.readings for f in files),
        first_reading=min((f.first_reading for f in files if f.first_reading), default=None),
        last_reading=max((f.last_reading for f in files if f.last_reading), default=None),
        vitals=vitals,
        findings=findings,
        findings_total=sum(f.total for f in findings),
        trends_assessed=assessed,
        trends=trends,
        files=files,
    )


def _readings_filter(lake: Lake, who: str, label: str, limits: EngineLimits | None) -> str:
    """`who`, and the participant's bucket when `readings` has the `pb` partition: then only
    that bucket's files are read. The bucket is compared as the text the lake writes (`'07'`,
    `dataops/lake_write.py`): through the view, DuckDB prunes files on `pb = '07'` but not on
    `pb = 7` (measured: 2 of 8 files read against 8 of 8)."""
    columns = lake.query("SELECT * FROM readings LIMIT 0", limits).columns
    if "pb" not in columns:
        return who
    return f"{who} AND pb = {quote_literal(f'{bucket_of_pseudonym(label):02d}')}"


def stored_baselines(
    label: str, histograms: list[DayHistogram], last_day: date, window_days: int
) -> list[TimelineBaseline]:
    """The participant's baselines as analyze computes them (`domain/history.py`), from the
    history store's day histograms of the `window_days` days before `last_day` through it:
    what a file ending on `last_day` would be compared with. Vitals below the baseline's
    minimum number of readings have none."""
    start, end = stored.window(last_day, last_day, window_days)
    found = stored.participant_history(label, histograms, [], start, end)
    return [
        TimelineBaseline(
            metric=metric,
            median=_num(b.median),
            spread=_num(b.spread),
            n=b.n,
            window_start=b.window_start.isoformat(),
            window_end=b.window_end.isoformat(),
        )
        for metric in VITAL_COLUMNS
        if (b := found.baselines.get(metric)) is not None
    ]


@dataclass(frozen=True)
class _DayMedian:
    day: date
    median: float


def timeline_trends(label: str, vitals: list[VitalHistory]) -> tuple[bool, list[TimelineTrend]]:
    """The trend rules of `domain/trends.py` applied to the participant's daily medians (each
    rule over its span ending on the last day with readings): whether any rule had enough
    days, and the trends the rules flag. The medians are the lake's (exact), where analyze
    uses the history store's (at the chart's resolution), so a trend on a rule's very edge
    may differ by a rounding step from the one a file report shows."""
    daily = {
        v.metric: [_DayMedian(date.fromisoformat(d.day), float(d.median)) for d in v.days]
        for v in vitals
    }
    assessed, found = flagged_trends(label, daily)
    # a timeline trend is the flagged Trend's fields less the id, the slope and the medians
    return assessed, [TimelineTrend.model_validate(t, from_attributes=True) for t in found]


def _long(who: str) -> str:
    """The participant's readings, one row per (reading, vital) with a value (UNPIVOT drops
    NULLs)."""
    columns = ", ".join(VITAL_COLUMNS)
    return (
        f"(UNPIVOT (SELECT event_time, {columns} FROM readings WHERE {who}) "
        f"ON {columns} INTO NAME metric VALUE value)"
    )


def _vitals_sql(who: str) -> str:
    return (
        "SELECT metric, count(*), median(value), min(value), max(value), "
        "arg_max(value, event_time), max(event_time) "
        f"FROM {_long(who)} GROUP BY metric"
    )


def _days_sql(who: str) -> str:
    return (
        f"SELECT metric, {READING_DAY} AS day, count(*), median(value), min(value), max(value) "
        f"FROM {_long(who)} GROUP BY ALL ORDER BY metric, day"
    )


def _vitals(overall: QueryResult, daily: QueryResult) -> list[VitalHistory]:
    days: dict[str, list[VitalDay]] = {}
    for metric, day, n, median, low, high in daily.rows:
        days.setdefault(str(metric), []).append(
            VitalDay(day=str(day), n=int(n), median=_num(median), min=_num(low), max=_num(high))
        )
    by_metric = {str(row[0]): row for row in overall.rows}
    vitals: list[VitalHistory] = []
    for metric in VITAL_COLUMNS:  # the lake's column order, every vital (n = 0 when none)
        row = by_metric.get(metric)
        if row is None:
            vitals.append(VitalHistory(metric=metric))
            continue
        _, n, median, low, high, latest, latest_time = row
        vitals.append(
            VitalHistory(
                metric=metric,
                n=int(n),
                median=_num(median),
                min=_num(low),
                max=_num(high),
                latest=_num(latest),
                latest_time=_iso(latest_time),
                days=days.get(metric, []),
            )
        )
    return vitals


def _findings(result: QueryResult) -> list[FindingKind]:
    kinds: dict[tuple[str, str], FindingKind] = {}
    for kind, metric, severity, n in result.rows:
        info = clinical.KINDS.get(str(kind))
        entry = kinds.setdefault(
            (str(kind), str(metric or "")),
            FindingKind(
                kind=str(kind),
                metric=str(metric or (info.metric if info else "")),
                label=info.label if info else str(kind).replace("_", " ").capitalize(),
                reference=info.reference if info else "",
                criterion=info.criterion if info else "",
                total=0,
            ),
        )
        name = clinical.severity_label(int(severity)) if severity is not None else "none"
        entry.total += int(n)
        entry.by_severity[name] = entry.by_severity.get(name, 0) + int(n)
    worst_first = sorted(
        kinds.values(),
        key=lambda k: (
            -max(clinical.SEVERITY_RANK[s] for s in k.by_severity),
            -k.total,
            k.kind,
            k.metric,
        ),
    )
    return worst_first


def _num(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else round(number, 2)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
