"""Issue 7's targets, checked against one harness run, and the printed table."""

from __future__ import annotations

from typing import Any

COLUMNS = ("floor", "outputs_floor", "baseline", "ingest", "analyze", "notify", "run")


def _get(sizes: dict[str, Any], size: str, *path: str) -> float | None:
    node: Any = sizes.get(size)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def _target(
    name: str, value: float | None, limit: float, figures: str, *, at_least: bool
) -> dict[str, Any]:
    if value is None:
        return {"target": name, "status": "NOT MEASURED", "figures": figures}
    met = value >= limit if at_least else value <= limit
    return {
        "target": name,
        "status": "MET" if met else "NOT MET",
        "value": value,
        "limit": limit,
        "figures": figures,
    }


def evaluate(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its status and the figures it was judged on."""
    out = []
    b, i = _get(sizes, "2m", "baseline", "seconds"), _get(sizes, "2m", "ingest", "seconds")
    speedup = round(b / i, 2) if b and i else None
    out.append(
        _target(
            "ingest >= 15x faster than baseline at 2M rows",
            speedup,
            15.0,
            f"baseline {b} s / ingest {i} s = {speedup}x",
            at_least=True,
        )
    )
    f, i10 = _get(sizes, "10m", "floor", "seconds"), _get(sizes, "10m", "ingest", "seconds")
    ratio = round(i10 / f, 2) if f and i10 else None
    out.append(
        _target(
            "ingest <= 1.5x the copy floor at 10M rows",
            ratio,
            1.5,
            f"ingest {i10} s / floor {f} s = {ratio}x",
            at_least=False,
        )
    )
    for stage in ("ingest", "analyze"):
        rss = _get(sizes, "10m", stage, "max_peak_rss_mb")
        small = _get(sizes, "2m", stage, "max_peak_rss_mb")
        out.append(
            _target(
                f"{stage} peak RSS <= 300 MB at 10M rows",
                rss,
                300.0,
                f"{stage} peak RSS {rss} MB at 10M ({small} MB at 2M)",
                at_least=False,
            )
        )
    a = _get(sizes, "10m", "analyze", "seconds")
    ratio = round(a / i10, 2) if a and i10 else None
    out.append(
        _target(
            "analyze <= 2x ingest time at 10M rows",
            ratio,
            2.0,
            f"analyze {a} s / ingest {i10} s = {ratio}x",
            at_least=False,
        )
    )
    r = _get(sizes, "2m", "run", "seconds")
    ratio = round(r / i, 2) if r and i else None
    out.append(
        _target(
            "whole run at 2M rows <= 3x ingest alone",
            ratio,
            3.0,
            f"healthpipe run {r} s / ingest {i} s = {ratio}x",
            at_least=False,
        )
    )
    return out


def bounds(sizes: dict[str, Any]) -> list[str]:
    """What the outputs floor (the copy into CSV and Parquet, no checks) says about the two
    speed targets: the time each target allows ingest, beside the time the two output
    formats take to write on their own in the same run."""
    lines = []
    b, o2 = _get(sizes, "2m", "baseline", "seconds"), _get(sizes, "2m", "outputs_floor", "seconds")
    if b and o2:
        allowed = round(b / 15, 3)
        lines.append(
            f"15x at 2M allows ingest {allowed} s (baseline {b} s / 15); writing CSV + Parquet "
            f"alone takes {o2} s, {'more' if o2 > allowed else 'less'} than that"
        )
    f, o10 = _get(sizes, "10m", "floor", "seconds"), _get(sizes, "10m", "outputs_floor", "seconds")
    if f and o10:
        lines.append(
            f"1.5x floor at 10M allows ingest {round(1.5 * f, 3)} s (floor {f} s); writing "
            f"CSV + Parquet alone takes {o10} s = {round(o10 / f, 2)}x the floor"
        )
    return lines


def _cell(m: dict[str, Any] | None) -> str:
    if not m or "seconds" not in m:
        return "-"
    return f"{m['seconds']:.2f}s {m['peak_rss_mb']:.0f}MB"


def format_table(results: dict[str, Any]) -> str:
    sizes: dict[str, Any] = results["sizes"]
    head = ["size", "MB in"] + [f"{c} (s, peak RSS)" for c in COLUMNS]
    head += ["ingest rows/s", "x baseline", "/ floor", "/ outputs floor"]
    head += ["analyze/ingest", "run/ingest"]
    rows = [head]
    for size, r in sizes.items():
        ratios = r["ratios"]

        def fmt(v: float | None, suffix: str = "") -> str:
            return "-" if v is None else f"{v:.2f}{suffix}"

        rows.append(
            [size, f"{r['bytes'] / 1e6:.1f}"]
            + [_cell(r.get(c)) for c in COLUMNS]
            + [
                f"{r['ingest'].get('rows_per_s', 0):,}",
                fmt(ratios["baseline_over_ingest"], "x"),
                fmt(ratios["ingest_over_floor"], "x"),
                fmt(ratios.get("ingest_over_outputs_floor"), "x"),
                fmt(ratios["analyze_over_ingest"], "x"),
                fmt(ratios["run_over_ingest"], "x"),
            ]
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = results["machine"]
    lines.append(
        f"machine: {m['cpus']} cpus, duckdb {m['duckdb']}, load average before "
        f"{m['load_average']} after {m.get('load_average_after')}"
    )
    lines.append("targets:")
    for t in results.get("targets", []):
        lines.append(f"  [{t['status']}] {t['target']}: {t['figures']}")
    reference = bounds(sizes)
    if reference:
        lines.append("outputs floor (DuckDB copies the CSV to CSV and to Parquet, no checks):")
        lines.extend(f"  {line}" for line in reference)
    return "\n".join(lines)
