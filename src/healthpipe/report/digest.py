"""The digest: one email summarising every dataset analysed in a time window, with the change
against the window just before it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from healthpipe.domain.brief import NOT_ASSESSABLE, plural
from healthpipe.domain.documents import Analysis, AnalysisSummary
from healthpipe.report import labels as lb
from healthpipe.report.charts import Chart, trend_chart
from healthpipe.report.model import (
    DEFAULT_DISCLAIMER,
    SEVERITIES,
    SEVERITY_RANK,
    count,
    file_risk,
    pct,
)
from healthpipe.report.render import chart_views, counted, mime_message, render_template
from healthpipe.report.safe import neutralise

DIGEST_ROWS = 50


@dataclass(frozen=True)
class Window:
    start: float  # epoch seconds, inclusive
    end: float  # epoch seconds, exclusive

    @property
    def previous(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)

    @property
    def name(self) -> str:
        hours = round((self.end - self.start) / 3600)
        return f"digest-{_when(self.end, '%Y%m%dT%H%MZ')}-{hours}h"

    @property
    def identity(self) -> str:
        return f"{int(self.start)}-{int(self.end)}"

    def holds(self, summary: AnalysisSummary) -> bool:
        return self.start <= summary.created_epoch < self.end


def _when(epoch: float, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(fmt)


def window_totals(summaries: list[AnalysisSummary]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for s in summaries:
        totals["datasets"] += 1
        totals["rows_input"] += s.rows.input
        totals["rows_valid"] += s.rows.valid
        totals["rows_rejected"] += s.rows.rejected
        totals["findings"] += s.anomalies.total
        for sev in SEVERITIES:
            totals[sev] += s.anomalies.by_severity.get(sev, 0)
        totals["episodes"] += s.episodes.total
    return {k: totals[k] for k in _TREND_LABELS}


def worst_of(summaries: list[AnalysisSummary]) -> str:
    worst = max(
        (s.worst_severity or "none" for s in summaries),
        default="none",
        key=lambda w: SEVERITY_RANK.get(w, 0),
    )
    return worst if worst in SEVERITY_RANK else "none"


_TREND_LABELS = {
    "datasets": "Datasets analysed",
    "rows_input": "Rows in",
    "rows_valid": "Rows valid",
    "rows_rejected": "Rows rejected",
    "findings": "Findings",
    "high": "High-severity findings",
    "medium": "Medium-severity findings",
    "low": "Low-severity findings",
    "episodes": "Episodes",
}


def dataset_worst(summary: AnalysisSummary) -> str:
    """A dataset's worst severity; a file with no valid reading is not assessable, not 'none'."""
    if summary.rows.model_fields_set and not summary.rows.valid:
        return NOT_ASSESSABLE
    return neutralise(summary.worst_severity or "none", 10)


# the order of the dataset lists: the highest risk first; a risk not known (no valid readings,
# or the analysis document missing) above "low", which it may hide
RISK_RANK = {"critical": 4, "high": 3, "moderate": 2, "low": 0}
UNKNOWN_RANK = 1
RISK_NOT_KNOWN = "risk not known (its analysis document is missing)"


@dataclass(frozen=True)
class DatasetRisk:
    """One dataset's risk as its report states it (`file_risk`: level, criterion, trends to
    review), and where it sorts."""

    level: str  # as the report shows it (`NOT_ASSESSABLE` too); "" when not known
    basis: str
    trends: str  # "2 trends to review (…)", "no trend flagged (…)", "trends not assessed"
    trends_flagged: int
    rank: int
    assessed: bool  # a level from the file's readings

    @property
    def statement(self) -> str:
        if not self.level:
            return f"{RISK_NOT_KNOWN} · {self.trends}"
        basis = f" ({self.basis})" if self.basis else ""
        return f"risk from this file's readings: {self.level}{basis} · {self.trends}"

    @classmethod
    def of(cls, analysis: Analysis | None) -> DatasetRisk:
        """`analysis` None: its document was not found."""
        if analysis is None:
            return cls("", "", "trends not known", 0, UNKNOWN_RANK, assessed=False)
        risk = file_risk(analysis)
        trends = analysis.trends
        if risk.trends_to_review:
            trend_text = risk.trends_to_review
        elif trends is not None and trends.participants_assessed:
            trend_text = f"no trend flagged (compared with the last {trends.window_days} days)"
        else:
            trend_text = "trends not assessed"
        return cls(
            risk.level,
            risk.basis,
            trend_text,
            len(trends.flagged) if trends is not None else 0,
            RISK_RANK.get(risk.level, UNKNOWN_RANK) if risk.assessable else UNKNOWN_RANK,
            assessed=risk.assessable,
        )


def risk_headline(risks: list[DatasetRisk]) -> tuple[str, str]:
    """The window's risk, for the header and the subject: the highest level among the datasets
    (with its criterion), how many datasets have no known risk, and the trends to review
    ("" for an empty window)."""
    if not risks:
        return "", ""
    known = [r for r in risks if r.assessed]
    unknown = len(risks) - len(known)
    trends = sum(r.trends_flagged for r in risks)
    with_trends = sum(1 for r in risks if r.trends_flagged)
    parts, subject = [], []
    if known:
        top = max(known, key=lambda r: r.rank)
        basis = f" ({top.basis})" if top.basis else ""
        parts.append(f"Highest risk from a file's readings: {top.level}{basis}")
        subject.append(f"highest risk: {top.level}")
    if unknown:
        missing = f"not known for {plural(unknown, 'dataset')}"
        parts.append(f"risk {missing}")
        subject.append(missing if known else f"highest risk: {missing}")
    if trends:
        parts.append(f"{plural(trends, 'trend')} to review in {plural(with_trends, 'dataset')}")
    headline = " · ".join(parts)
    headline = headline[0].upper() + headline[1:]
    shown = ", ".join(subject) + (f" | {plural(trends, 'trend')} to review" if trends else "")
    return headline, shown


def _risk_fields(risk: DatasetRisk) -> dict[str, str]:
    """The risk of a dataset's row: the sentence (text) and its parts (HTML)."""
    return {
        "risk": risk.statement,
        "risk_level": risk.level,
        "risk_basis": risk.basis,
        "risk_unknown": "" if risk.level else RISK_NOT_KNOWN,
        "trends": risk.trends,
        "trends_flagged": "yes" if risk.trends_flagged else "",
    }


def change(current: int, previous: int) -> str:
    delta = current - previous
    if delta == 0:
        return "no change"
    sign = "+" if delta > 0 else "−"
    relative = f" ({sign}{abs(delta) / previous:.0%})" if previous else " (new)"
    return f"{sign}{abs(delta):,}{relative}"


@dataclass
class DigestModel:
    name: str
    subject: str
    period: str
    previous_period: str
    worst_severity: str
    quality_now: str
    quality_before: str
    trends: list[dict[str, str]]
    datasets: list[dict[str, str]]
    datasets_total: int
    risk_headline: str
    reasons: list[dict[str, str]]
    kinds: list[dict[str, str]]
    disclaimer: str
    severity_colours: dict[str, str]
    totals_now: dict[str, int]
    totals_before: dict[str, int]
    index_href: str = ""

    def as_context(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def chart(self) -> Chart:
        return trend_chart(self.totals_now, self.totals_before)


def _aggregate(counts: list[dict[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for block in counts:
        for k, n in block.items():
            total[k] += n
    return total


def build_digest_model(
    window: Window,
    current: list[AnalysisSummary],
    previous: list[AnalysisSummary],
    analyses: Mapping[str, Analysis] | None = None,
) -> DigestModel:
    """`analyses`: the analysis document of each dataset of `current` by dataset id (one
    missing: its risk is not known). The datasets are listed the highest risk first
    (`RISK_RANK`), then the most trends to review, the most high-severity findings, the
    newest."""
    now, before = window_totals(current), window_totals(previous)
    worst = worst_of(current)
    found = analyses or {}
    risks = {s.dataset_id: DatasetRisk.of(found.get(s.dataset_id)) for s in current}

    def order(s: AnalysisSummary) -> tuple[int, int, int, float]:
        risk = risks[s.dataset_id]
        high = int(s.anomalies.by_severity.get("high", 0) or 0)
        return (-risk.rank, -risk.trends_flagged, -high, -s.created_epoch)

    headline, subject_risk = risk_headline([risks[s.dataset_id] for s in current])
    datasets = [
        {
            "created": _when(s.created_epoch),
            "name": neutralise(s.source_key.rsplit("/", 1)[-1], 80),
            "dataset_id": neutralise(s.dataset_id, 40),
            "href": f"{neutralise(s.dataset_id, 40)}.html",
            "rows": count(s.rows.input),
            "valid_pct": pct(s.rows.valid, s.rows.input),
            "findings": count(s.anomalies.total),
            "high": count(s.anomalies.by_severity.get("high")),
            "worst": dataset_worst(s),
            **_risk_fields(risks[s.dataset_id]),
        }
        for s in sorted(current, key=order)
    ]
    reasons = _aggregate([s.reject_reasons for s in current])
    kinds = _aggregate([s.anomalies.by_kind for s in current])
    n = len(current)
    return DigestModel(
        name=window.name,
        subject=(
            f"healthpipe digest {_when(window.start, '%Y-%m-%d %H:%M')} to "
            f"{_when(window.end)} | {counted(n, 'dataset')} | worst severity: {worst}"
            + (f" | {subject_risk}" if subject_risk else "")
        ),
        period=f"{_when(window.start)} → {_when(window.end)}",
        previous_period=f"{_when(window.previous.start)} → {_when(window.previous.end)}",
        worst_severity=worst,
        quality_now=pct(now["rows_valid"], now["rows_input"]) if now["rows_input"] else "no data",
        quality_before=(
            pct(before["rows_valid"], before["rows_input"]) if before["rows_input"] else "no data"
        ),
        trends=[
            {
                "label": label,
                "now": count(now[key]),
                "before": count(before[key]),
                "change": change(now[key], before[key]),
            }
            for key, label in _TREND_LABELS.items()
        ],
        datasets=datasets[:DIGEST_ROWS],
        datasets_total=n,
        risk_headline=headline,
        reasons=[
            {"label": lb.reason_label(k), "count": count(v)} for k, v in reasons.most_common(5)
        ],
        kinds=[
            {"label": lb.kind_label(k), "reference": lb.kind_reference(k)[0], "count": count(v)}
            for k, v in kinds.most_common(8)
        ],
        disclaimer=DEFAULT_DISCLAIMER,
        severity_colours=dict(lb.SEVERITY_COLOURS),
        totals_now=now,
        totals_before=before,
    )


def render_digest_html(model: DigestModel, charts: list[Chart]) -> str:
    """The browsable copy: the chart embedded as a data URI."""
    views = chart_views(charts, inline_images=True)
    return render_template("digest.html", {**model.as_context(), "charts": views})


def build_digest_message(
    model: DigestModel, charts: list[Chart], *, sender: str, recipients: list[str]
) -> EmailMessage:
    views = chart_views(charts, inline_images=False)
    context = {**model.as_context(), "index_href": "", "charts": views}
    return mime_message(
        subject=model.subject,
        sender=sender,
        recipients=recipients,
        text=render_template("digest.txt", context),
        html=render_template("digest.html", context),
        images=charts,
        idstring=model.name,
        headers={"X-Healthpipe-Digest": model.name},
    )
