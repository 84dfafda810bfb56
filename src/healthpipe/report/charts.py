"""Report charts as PNG bytes (matplotlib, Agg backend, imported only when drawing)."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

from healthpipe.report import labels as lb
from healthpipe.report.model import NORMAL_BANDS

DPI = 100
BAR = "#2c7fb8"
BAND = "#27ae60"
REFERENCE_COLOURS = {lb.NEWS2: "#2c7fb8", lb.ACC_AHA: "#8e44ad", lb.BASELINE: "#7f8c8d"}


@dataclass(frozen=True)
class Chart:
    cid: str
    filename: str
    alt: str
    png: bytes
    width_px: int = 672


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(plt: Any, fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buffer.getvalue()


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def distributions_chart(metrics: dict[str, Any]) -> Chart:
    plt = _pyplot()
    names = [m for m in metrics if (metrics[m].get("histogram") or {}).get("counts")]
    fig, axes = plt.subplots(2, 3, figsize=(10, 5.6))
    for ax, metric in zip(axes.flat, names, strict=False):
        hist = metrics[metric]["histogram"]
        edges, counts = hist["edges"], hist["counts"]
        widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color=BAR, edgecolor="white")
        if metric in NORMAL_BANDS:
            lo, hi, _ = NORMAL_BANDS[metric]
            ax.axvspan(lo, hi, color=BAND, alpha=0.18, label="normal band")
            ax.set_xlim(edges[0], edges[-1])
        ax.set_title(lb.metric_label(metric), fontsize=10)
        ax.set_ylabel("readings", fontsize=8)
        _style(ax)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Distribution of each vital sign — shaded green: normal band", fontsize=11)
    fig.tight_layout()
    return Chart(
        "chart-distributions",
        "distributions.png",
        "Histograms of heart rate, SpO2, steps, temperature, systolic and diastolic blood "
        "pressure; the normal band (NEWS2 score 0, ACC/AHA normal diastolic) is shaded green",
        _finish(plt, fig),
    )


def timeline_chart(timeline: list[dict[str, Any]]) -> Chart:
    plt = _pyplot()
    buckets = sorted({str(t["bucket"]) for t in timeline})
    fig, ax = plt.subplots(figsize=(10, 3.2))
    bottom = [0] * len(buckets)
    for severity in ("low", "medium", "high"):
        counts = {str(t["bucket"]): t["count"] for t in timeline if t["severity"] == severity}
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
        step = max(1, len(buckets) // 8)
        ax.set_xticks(range(0, len(buckets), step))
        ax.set_xticklabels([b[5:16].replace("T", " ") for b in buckets[::step]], fontsize=8)
        handles, names = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], names[::-1], fontsize=8, title="severity", title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "No findings", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("findings", fontsize=9)
    ax.set_xlabel("time (UTC)", fontsize=9)
    ax.set_title("Findings over time, by severity", fontsize=11)
    _style(ax)
    fig.tight_layout()
    return Chart(
        "chart-timeline",
        "timeline.png",
        "Stacked bar chart of findings over time (UTC): high severity in red, medium in "
        "orange, low in yellow",
        _finish(plt, fig),
    )


def findings_by_type_chart(by_kind: dict[str, int]) -> Chart:
    plt = _pyplot()
    items = list(by_kind.items())[:12][::-1]
    fig, ax = plt.subplots(figsize=(10, max(1.8, 0.35 * len(items) + 1.2)))
    if items:
        colours = [REFERENCE_COLOURS.get(lb.kind_reference(k)[0], BAR) for k, _ in items]
        ax.barh([lb.kind_label(k) for k, _ in items], [v for _, v in items], color=colours)
        used = {lb.kind_reference(k)[0] for k, _ in items}
        handles = [
            plt.Rectangle((0, 0), 1, 1, color=colour)
            for ref, colour in REFERENCE_COLOURS.items()
            if ref in used
        ]
        ax.legend(handles, [r for r in REFERENCE_COLOURS if r in used], fontsize=8)
    else:
        ax.text(0.5, 0.5, "No findings", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("findings", fontsize=9)
    ax.set_title("Findings by type and reference (NEWS2, ACC/AHA 2017, baseline)", fontsize=11)
    _style(ax)
    fig.tight_layout()
    return Chart(
        "chart-findings",
        "findings-by-type.png",
        "Horizontal bar chart of findings by type, coloured by the clinical reference used",
        _finish(plt, fig),
    )


def rejections_chart(reasons: dict[str, int]) -> Chart:
    plt = _pyplot()
    items = list(reasons.items())[:10][::-1]
    fig, ax = plt.subplots(figsize=(10, max(1.6, 0.35 * len(items) + 1.2)))
    if items:
        ax.barh([lb.reason_label(k) for k, _ in items], [v for _, v in items], color="#7f8c8d")
    else:
        ax.text(0.5, 0.5, "No rejected rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("rejected rows (a row can fail several checks)", fontsize=9)
    ax.set_title("Rejected rows by reason", fontsize=11)
    _style(ax)
    fig.tight_layout()
    return Chart(
        "chart-rejections",
        "rejections.png",
        "Horizontal bar chart of rejected rows by validation reason",
        _finish(plt, fig),
    )


def report_charts(analysis: dict[str, Any]) -> list[Chart]:
    return [
        distributions_chart(analysis["metrics"]),
        timeline_chart(analysis["anomalies"].get("timeline", [])),
        findings_by_type_chart(analysis["anomalies"].get("by_kind", {})),
        rejections_chart(analysis["data_quality"].get("reasons", {})),
    ]


def trend_chart(now: dict[str, int], before: dict[str, int]) -> Chart:
    """Findings by severity in this window next to the previous one."""
    plt = _pyplot()
    severities = ("high", "medium", "low")
    fig, ax = plt.subplots(figsize=(10, 2.8))
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
    ax.set_xticklabels([f"{s} severity" for s in severities], fontsize=9)
    ax.set_ylabel("findings", fontsize=9)
    ax.set_title("Findings by severity: this window (colour) vs previous (grey)", fontsize=11)
    _style(ax)
    fig.tight_layout()
    return Chart(
        "chart-trend",
        "trend.png",
        "Bar chart of high, medium and low severity findings in this window next to the "
        "previous window",
        _finish(plt, fig),
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
