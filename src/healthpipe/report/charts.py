"""Report charts as PNG bytes (matplotlib, Agg backend, imported only when drawing).

Sizing: every figure is `FIGURE_WIDTH_IN` wide and saved without cropping, so its PNG is
exactly `FIGURE_WIDTH_IN * DPI` pixels wide, and the HTML shows it at `DISPLAY_WIDTH_PX` CSS
pixels (or less on a narrower screen). A font of `p` points then reads as
`p / 72 * DISPLAY_WIDTH_PX / FIGURE_WIDTH_IN` CSS pixels: 9 pt → 12.5 px, the smallest text
used (`SMALL_PT`). DPI is twice the display density, so charts stay sharp on high-density
screens; it does not change the displayed text size.
"""

from __future__ import annotations

import importlib
import io
import textwrap
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from healthpipe.domain.documents import Analysis, AnalysisFacts, MetricStats, TimelineBucket
from healthpipe.domain.documents.participant_timeline import VitalHistory
from healthpipe.report import labels as lb
from healthpipe.report.model import NORMAL_BANDS

DISPLAY_WIDTH_PX = 640  # CSS pixels the report shows a chart at, when the screen allows
FIGURE_WIDTH_IN = 6.4
DPI = 200  # 2 image pixels per CSS pixel at DISPLAY_WIDTH_PX
SMALL_PT = 9.0  # ticks, axis labels, legends: 12.5 CSS px at DISPLAY_WIDTH_PX
TITLE_PT = 11.0
LABEL_CHARS = 26  # wrap category labels longer than this
BAR = "#2c7fb8"
BAND = "#27ae60"
HISTORY_LINE = "#1f5f9f"
HISTORY_TICKS = 4  # dates on a history panel's x axis, at most
HISTORY_MARKED_DAYS = 60  # a dot per day up to this many days; a plain line beyond
# by the reference a finding kind cites (`labels.kind_reference`)
REFERENCE_COLOURS = {"NEWS2": "#2c7fb8", "ACC/AHA 2017": "#8e44ad", "Personal baseline": "#7f8c8d"}


@dataclass(frozen=True)
class Chart:
    cid: str
    filename: str
    alt: str
    png: bytes
    width_px: int = DISPLAY_WIDTH_PX


def css_px(points: float, display_width_px: float = DISPLAY_WIDTH_PX) -> float:
    """How tall `points` of chart text read, in CSS pixels, at `display_width_px`."""
    return points / 72.0 * display_width_px / FIGURE_WIDTH_IN


def _figure(height_in: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    """A figure of the fixed width; constrained layout keeps every label inside it.

    Built with matplotlib's object API, not pyplot: no global figure registry to close, safe
    from several threads, and the PNG is written by the Agg canvas that `savefig` picks."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGURE_WIDTH_IN, height_in), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=True)


def _wrapped(label: str) -> str:
    return "\n".join(textwrap.wrap(label, LABEL_CHARS)) or label


def _thousands(axis: Any) -> None:
    """Counts on `axis` with thousands separators (1,234) and whole numbers only."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))


def _finish(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=SMALL_PT)


def distributions_chart(metrics: dict[str, MetricStats]) -> Chart:
    from matplotlib.ticker import FuncFormatter

    histograms = {m: s.histogram for m, s in metrics.items() if s.histogram and s.histogram.counts}
    names = list(histograms)
    fig, axes = _figure(7.6, rows=3, cols=2)
    for ax, metric in zip(axes.flat, names, strict=False):
        edges, counts = histograms[metric].edges, histograms[metric].counts
        # one filled step outline per histogram (a bar per bin costs a patch per bin to lay out)
        ax.stairs(counts, edges, fill=True, color=BAR)
        if metric in NORMAL_BANDS:
            lo, hi, _ = NORMAL_BANDS[metric]
            ax.axvspan(lo, hi, color=BAND, alpha=0.18, label="normal band")
            ax.set_xlim(edges[0], edges[-1])
        ax.set_title(lb.metric_label(metric), fontsize=SMALL_PT + 1)
        ax.set_ylabel("readings", fontsize=SMALL_PT)
        _thousands(ax.yaxis)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,g}"))
        _style(ax)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Distribution of each vital sign\nshaded green: normal band", fontsize=TITLE_PT)
    return Chart(
        "chart-distributions",
        "distributions.png",
        "Histograms of heart rate, SpO2, steps, temperature, systolic and diastolic blood "
        "pressure; the normal band (NEWS2 score 0, ACC/AHA normal diastolic) is shaded green",
        _finish(fig),
    )


def timeline_chart(timeline: list[TimelineBucket]) -> Chart:
    buckets = sorted({str(t.bucket) for t in timeline})
    fig, ax = _figure(3.6)
    bottom = [0] * len(buckets)
    for severity in ("low", "medium", "high"):
        counts = {str(t.bucket): t.count for t in timeline if t.severity == severity}
        values = [int(counts.get(b, 0)) for b in buckets]
        ax.bar(
            range(len(buckets)),
            values,
            bottom=bottom,
            color=lb.SEVERITY_COLOURS[severity],
            label=severity,
            width=0.9,
        )
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    if buckets:
        step = max(1, -(-len(buckets) // 5))  # at most 5 labels: "MM-DD\nHH:MM"
        ax.set_xticks(range(0, len(buckets), step))
        ax.set_xticklabels([f"{b[5:10]}\n{b[11:16]}" for b in buckets[::step]])
        handles, names = ax.get_legend_handles_labels()
        ax.legend(
            handles[::-1],
            names[::-1],
            fontsize=SMALL_PT,
            title="severity",
            title_fontsize=SMALL_PT,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
        )
        _thousands(ax.yaxis)
    else:
        ax.text(0.5, 0.5, "No findings", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("findings", fontsize=SMALL_PT)
    ax.set_xlabel("time (UTC)", fontsize=SMALL_PT)
    ax.set_title("Findings over time, by severity", fontsize=TITLE_PT)
    _style(ax)
    return Chart(
        "chart-timeline",
        "timeline.png",
        "Stacked bar chart of findings over time (UTC): high severity in red, medium in "
        "orange, low in yellow",
        _finish(fig),
    )


def findings_by_type_chart(by_kind: dict[str, int]) -> Chart:
    items = list(by_kind.items())[:12][::-1]
    fig, ax = _figure(max(2.2, 0.42 * len(items) + 1.4))
    if items:
        from matplotlib.patches import Rectangle

        colours = [REFERENCE_COLOURS.get(lb.kind_reference(k)[0], BAR) for k, _ in items]
        ax.barh(
            [_wrapped(lb.kind_label(k)) for k, _ in items], [v for _, v in items], color=colours
        )
        used = {lb.kind_reference(k)[0] for k, _ in items}
        handles = [
            Rectangle((0, 0), 1, 1, color=colour)
            for ref, colour in REFERENCE_COLOURS.items()
            if ref in used
        ]
        ax.legend(handles, [r for r in REFERENCE_COLOURS if r in used], fontsize=SMALL_PT)
        _thousands(ax.xaxis)
    else:
        ax.text(0.5, 0.5, "No findings", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("findings", fontsize=SMALL_PT)
    ax.set_title(
        "Findings by type and reference\n(NEWS2, ACC/AHA 2017, personal baseline)",
        fontsize=TITLE_PT,
    )
    _style(ax)
    return Chart(
        "chart-findings",
        "findings-by-type.png",
        "Horizontal bar chart of findings by type, coloured by the clinical reference used",
        _finish(fig),
    )


def rejections_chart(reasons: dict[str, int]) -> Chart:
    items = list(reasons.items())[:10][::-1]
    fig, ax = _figure(max(2.0, 0.42 * len(items) + 1.3))
    if items:
        ax.barh(
            [_wrapped(lb.reason_label(k)) for k, _ in items],
            [v for _, v in items],
            color="#7f8c8d",
        )
        _thousands(ax.xaxis)
    else:
        ax.text(0.5, 0.5, "No rejected rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("rejected rows (a row can fail several checks)", fontsize=SMALL_PT)
    ax.set_title("Rejected rows by reason", fontsize=TITLE_PT)
    _style(ax)
    return Chart(
        "chart-rejections",
        "rejections.png",
        "Horizontal bar chart of rejected rows by validation reason",
        _finish(fig),
    )


DRAWING_MODULES = (
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.ticker",
    "matplotlib.patches",
    "PIL.PngImagePlugin",
)


def warm_up() -> None:
    """Import what drawing the charts needs (matplotlib's figure, its Agg canvas, the tickers
    and patches used here, Pillow's PNG writer), drawing nothing: about 0.4 CPU-seconds, 0.9
    when modules are compiled from source. The chart worker's first job (`drawing_in`)."""
    for module in DRAWING_MODULES:
        importlib.import_module(module)


_drawer: Executor | None = None
# charts the worker was asked to draw before the report needed them (`prefetch`), by job
_pending: dict[tuple[str, bytes], Future[Chart]] = {}
PENDING_LIMIT = 8  # a prefetch beyond this many undrawn charts is not made


@contextmanager
def drawing_in(pool: Executor) -> Iterator[None]:
    """Draw the report's charts in `pool` while the block runs, instead of in this process.

    `healthpipe run` starts a one-process pool (`orchestration.runs.chart_worker`) that
    imports matplotlib (`warm_up`) while ingest keeps about one core busy, and draws the
    charts there: this process never imports matplotlib, and notify does not wait for the
    import. The worker runs the same functions on the same numbers (their JSON), so the PNG
    bytes are those drawn here. A pool that broke (its process died) falls back to drawing
    here."""
    global _drawer
    previous, _drawer = _drawer, pool
    try:
        yield
    finally:
        _drawer = previous
        _pending.clear()


def _jobs(analysis: Analysis) -> list[tuple[str, bytes]]:
    """The report's charts, each as its name and the JSON of its numbers."""
    return [*_facts_jobs(analysis), rejections_job(analysis.data_quality.reasons)]


def _facts_jobs(facts: Analysis | AnalysisFacts) -> list[tuple[str, bytes]]:
    """The charts of the analysis's facts (all but the rejections): the analysis copies its
    metrics, timeline and headline from the facts, so their JSON is the same from either."""
    return [
        ("distributions", _metrics_json.dump_json(facts.metrics)),
        ("timeline", _timeline_json.dump_json(facts.anomalies.timeline)),
        ("findings", _counts_json.dump_json(facts.headline_by_kind())),
    ]


# The facts each chart of `_facts_jobs` is drawn from.
_CHART_INPUTS = {
    "distributions": {"metrics"},
    "timeline": {"anomalies"},
    "findings": {"anomalies"},
}


def rejections_job(reasons: dict[str, int]) -> tuple[str, bytes]:
    """The rejections chart's job: the ingest manifest's `counts.by_reason` are the
    analysis's `data_quality.reasons`, so it can be drawn as soon as ingest is done."""
    return ("rejections", _counts_json.dump_json(reasons))


def prefetch(jobs: list[tuple[str, bytes]]) -> None:
    """Start drawing `jobs` in the chart worker (`drawing_in`) now, so that `report_charts`
    finds them drawn or drawing: `healthpipe run` asks for the rejections chart once ingest
    is done (it is drawn while analyze runs), notify for all four before it builds the
    report's model and compiles its templates (drawn meanwhile). Without a worker, or with
    `PENDING_LIMIT` charts already waiting, nothing is done."""
    pool = _drawer
    if pool is None:
        return
    for job in jobs:
        if job in _pending or len(_pending) >= PENDING_LIMIT:
            continue
        try:
            _pending[job] = pool.submit(draw_chart, *job)
        except (BrokenExecutor, RuntimeError):
            return  # report_charts draws them here


def drawing_elsewhere() -> bool:
    """Whether the charts are drawn in a chart worker (inside `drawing_in`)."""
    return _drawer is not None


def prefetch_report_charts(analysis: Analysis) -> None:
    """`prefetch` the four charts of `analysis`'s report."""
    prefetch(_jobs(analysis))


def prefetch_facts_charts(facts: AnalysisFacts) -> None:
    """`prefetch` the charts of the analysis's `facts` as soon as the analyze stage has
    them, instead of while notify waits for them: the distributions once the file is
    scanned (facts with `metrics` set, not yet `anomalies`), the others once the facts are
    final (while the anomaly file is written on one core). A chart is drawn once: its job
    is keyed by its numbers, the same at both times."""
    given = facts.model_fields_set
    prefetch([job for job in _facts_jobs(facts) if _CHART_INPUTS[job[0]] <= given])


def report_charts(analysis: Analysis) -> list[Chart]:
    """The report's four charts, each drawn once per distinct input in this process (or in
    the chart worker, see `drawing_in`).

    A chart is a pure function of its numbers, and drawing one costs about a quarter of a
    second of CPU. The notify stage is retried whole (a mail server or store that fails, a
    claim held by another worker: the local dispatcher retries in the same process, and a
    warm Lambda container serves the retry), so the same report's charts would be drawn
    again on every attempt; the last `CHART_CACHE_SIZE` charts are kept instead, keyed by
    the chart and the JSON of its numbers (a few hundred KB of PNG at most)."""
    jobs = _jobs(analysis)
    pool = _drawer
    if pool is not None:
        try:
            futures = [
                _pending.pop(job) if job in _pending else pool.submit(draw_chart, *job)
                for job in jobs
            ]
            return [future.result() for future in futures]
        except BrokenExecutor:
            pass  # drawn here instead
    return [_drawn(chart, numbers) for chart, numbers in jobs]


def draw_chart(chart: str, numbers: bytes) -> Chart:
    """One report chart from its numbers' JSON (what the chart worker runs)."""
    return _drawn(chart, numbers)


CHART_CACHE_SIZE = 16
_metrics_json = TypeAdapter(dict[str, MetricStats])
_timeline_json = TypeAdapter(list[TimelineBucket])
_counts_json = TypeAdapter(dict[str, int])


@lru_cache(maxsize=CHART_CACHE_SIZE)
def _drawn(chart: str, numbers: bytes) -> Chart:
    """One report chart drawn from its numbers' JSON (the cache key is the JSON itself)."""
    if chart == "distributions":
        return distributions_chart(_metrics_json.validate_json(numbers))
    if chart == "timeline":
        return timeline_chart(_timeline_json.validate_json(numbers))
    if chart == "findings":
        return findings_by_type_chart(_counts_json.validate_json(numbers))
    return rejections_chart(_counts_json.validate_json(numbers))


def trend_chart(now: dict[str, int], before: dict[str, int]) -> Chart:
    """Findings by severity in this window next to the previous one."""
    severities = ("high", "medium", "low")
    fig, ax = _figure(3.0)
    positions = range(len(severities))
    previous = [before.get(s, 0) for s in severities]
    current = [now.get(s, 0) for s in severities]
    ax.bar([p - 0.2 for p in positions], previous, width=0.4, color="#bdc3c7", label="previous")
    ax.bar(
        [p + 0.2 for p in positions],
        current,
        width=0.4,
        color=[lb.SEVERITY_COLOURS[s] for s in severities],
        label="this window",
    )
    ax.set_xticks(list(positions))
    ax.set_xticklabels([f"{s} severity" for s in severities])
    ax.set_ylabel("findings", fontsize=SMALL_PT)
    _thousands(ax.yaxis)
    ax.set_title(
        "Findings by severity:\nthis window (colour) vs previous (grey)", fontsize=TITLE_PT
    )
    _style(ax)
    return Chart(
        "chart-trend",
        "trend.png",
        "Bar chart of high, medium and low severity findings in this window next to the "
        "previous window",
        _finish(fig),
    )


def vitals_history_chart(vitals: list[VitalHistory]) -> Chart:
    """A participant's history (`healthpipe history`): six panels (three rows of two), one
    per vital, each a line of daily medians over a band from the day's lowest to highest
    reading; two artists a panel, so it stays cheap for a long history."""
    from matplotlib.ticker import FuncFormatter

    fig, axes = _figure(6.6, rows=3, cols=2)
    every_day = sorted({d.day for v in vitals for d in v.days})
    ordinals = [date.fromisoformat(d).toordinal() for d in every_day]
    step = max(1, -(-len(ordinals) // HISTORY_TICKS))
    ticks = ordinals[::step]
    for ax, vital in zip(axes.flat, vitals, strict=False):
        ax.set_title(lb.metric_label(vital.metric), fontsize=SMALL_PT + 1)
        _style(ax)
        if not vital.days:
            ax.text(0.5, 0.5, "no readings", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        x = [date.fromisoformat(d.day).toordinal() for d in vital.days]
        lows, highs = [d.min for d in vital.days], [d.max for d in vital.days]
        ax.fill_between(x, lows, highs, color=HISTORY_LINE, alpha=0.18, linewidth=0)
        marker = "o" if len(x) <= HISTORY_MARKED_DAYS else None
        ax.plot(x, [d.median for d in vital.days], color=HISTORY_LINE, marker=marker, markersize=3)
        ax.set_xticks(ticks)
        ax.set_xticklabels([date.fromordinal(t).strftime("%m-%d") for t in ticks])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,g}"))
        if len(ordinals) > 1:
            ax.set_xlim(ordinals[0] - 0.5, ordinals[-1] + 0.5)
    for ax in list(axes.flat)[len(vitals) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Daily median of each vital (line)\nband: the day's lowest to highest reading",
        fontsize=TITLE_PT,
    )
    return Chart(
        "chart-history",
        "history.png",
        "Six small line charts, one per vital (heart rate, SpO2, steps, temperature, systolic "
        "and diastolic blood pressure): the daily median as a line over a shaded band from "
        "the day's lowest to highest reading, by reading day (UTC)",
        _finish(fig),
    )


def downscaled(chart: Chart, factor: float = 0.5) -> Chart:
    """The same chart at `factor` of its pixel size, re-encoded as an optimised PNG."""
    from PIL import Image

    with Image.open(io.BytesIO(chart.png)) as image:
        size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return replace(chart, png=buffer.getvalue())
