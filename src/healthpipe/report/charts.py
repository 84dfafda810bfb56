"""Report charts as PNG bytes (matplotlib, Agg backend, imported only when drawing)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from healthpipe.report.model import metric_label

# The NEWS2 zero-score band (or ACC/AHA normal for diastolic) shaded on each distribution.
NORMAL_BANDS = {
    "heart_rate": (51, 90),
    "spo2": (96, 100),
    "temp_c": (36.1, 38.0),
    "systolic_bp": (111, 219),
    "diastolic_bp": (0, 79),
}
SEVERITY_COLOURS = {"high": "#c0392b", "medium": "#e67e22", "low": "#f1c40f"}
DPI = 100


@dataclass(frozen=True)
class Chart:
    cid: str
    filename: str
    alt: str
    png: bytes


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def distributions_chart(metrics: dict[str, Any]) -> Chart:
    plt = _pyplot()
    names = [m for m in metrics if metrics[m].get("histogram")]
    fig, axes = plt.subplots(2, 3, figsize=(10, 5.5))
    for ax, metric in zip(axes.flat, names, strict=False):
        hist = metrics[metric]["histogram"]
        edges, counts = hist["edges"], hist["counts"]
        widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color="#2c7fb8", edgecolor="white")
        if metric in NORMAL_BANDS:
            lo, hi = NORMAL_BANDS[metric]
            ax.axvspan(lo, hi, color="#2ecc71", alpha=0.15, label="normal band")
        ax.set_title(metric_label(metric), fontsize=10)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Vitals distributions (green: normal band)", fontsize=11)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return Chart(
        "chart-distributions",
        "distributions.png",
        "Histograms of each vital sign with the normal band shaded in green",
        png,
    )


def timeline_chart(timeline: list[dict[str, Any]]) -> Chart:
    plt = _pyplot()
    buckets = sorted({t["bucket"] for t in timeline})
    fig, ax = plt.subplots(figsize=(10, 3.2))
    bottom = [0] * len(buckets)
    for severity in ("low", "medium", "high"):
        counts = {t["bucket"]: t["count"] for t in timeline if t["severity"] == severity}
        values = [counts.get(b, 0) for b in buckets]
        ax.bar(
            range(len(buckets)),
            values,
            bottom=bottom,
            color=SEVERITY_COLOURS[severity],
            label=severity,
        )
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    step = max(1, len(buckets) // 8)
    ax.set_xticks(range(0, len(buckets), step))
    ax.set_xticklabels([str(b)[5:16].replace("T", " ") for b in buckets[::step]], fontsize=8)
    ax.set_ylabel("findings")
    ax.set_title("Findings over time by severity", fontsize=11)
    if buckets:
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return Chart(
        "chart-timeline",
        "timeline.png",
        "Stacked bar chart of findings over time, by severity",
        png,
    )


def rejections_chart(reasons: dict[str, int]) -> Chart:
    plt = _pyplot()
    items = list(reasons.items())[:10][::-1]
    fig, ax = plt.subplots(figsize=(10, max(1.6, 0.4 * len(items) + 1)))
    if items:
        ax.barh([k for k, _ in items], [v for _, v in items], color="#7f8c8d")
    else:
        ax.text(0.5, 0.5, "No rejected rows", ha="center", va="center")
        ax.set_yticks([])
    ax.set_xlabel("rows")
    ax.set_title("Rejected rows by reason", fontsize=11)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return Chart(
        "chart-rejections", "rejections.png", "Horizontal bar chart of rejected rows by reason", png
    )


def report_charts(analysis: dict[str, Any]) -> list[Chart]:
    return [
        distributions_chart(analysis["metrics"]),
        timeline_chart(analysis["anomalies"].get("timeline", [])),
        rejections_chart(analysis["data_quality"].get("reasons", {})),
    ]
