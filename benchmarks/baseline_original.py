"""The original system's ingestor and analyzer algorithms, reproduced as they were, to
measure against.

It decodes the whole file into memory, parses it with `csv.DictReader` into a list of
dicts, calls one Python validation function per row, and writes the valid and the rejected
rows with `csv.DictWriter`. Rules are the original ones (the `seed` profile): every required
field non-empty, inclusive numeric ranges, diastolic_bp <= systolic_bp.

The analyzer (`analyze`) reads the processed CSV the same way (whole file decoded, a list of
dicts), flags every row against its four thresholds (heart rate < 60 or > 160, SpO2 < 92,
temperature > 38.0, systolic > 140 or diastolic > 90), computes its statistics (averages of
the six vitals, max/min heart rate, max temperature, min SpO2) and builds its DynamoDB item
holding every anomaly, floats turned into Decimals and marshalled as `put_item` would
(boto3's TypeSerializer when boto3 is installed). No AWS call is made: the Bedrock prompt,
the `put_item`, the S3 analysis object and the event are left out.

    python benchmarks/baseline_original.py INPUT.csv OUTPUT_DIR   # ingest, then analyze
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REQUIRED = (
    "event_time",
    "user_id",
    "heart_rate",
    "spo2",
    "steps",
    "temp_c",
    "systolic_bp",
    "diastolic_bp",
)
RANGES = {
    "heart_rate": (50.0, 180.0),
    "spo2": (90.0, 100.0),
    "steps": (0.0, 50000.0),
    "temp_c": (35.0, 40.0),
    "systolic_bp": (90.0, 180.0),
    "diastolic_bp": (60.0, 120.0),
}


def validate_row(row: dict[str, str]) -> list[str]:
    """The reasons a row is rejected (empty when it is valid)."""
    reasons = []
    for field in REQUIRED:
        if not (row.get(field) or "").strip():
            reasons.append(f"missing_{field}")
    for field, (low, high) in RANGES.items():
        text = (row.get(field) or "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            reasons.append(f"invalid_{field}")
            continue
        if not low <= value <= high:
            reasons.append(f"invalid_{field}")
    try:
        if float(row["diastolic_bp"]) > float(row["systolic_bp"]):
            reasons.append("dbp_gt_sbp")
    except (KeyError, TypeError, ValueError):
        pass
    return reasons


def process(path: Path, out_dir: Path) -> dict[str, int]:
    text = path.read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    fields = list(rows[0].keys()) if rows else list(REQUIRED)
    valid: list[dict[str, str]] = []
    rejected: list[dict[str, str]] = []
    for row in rows:
        reasons = validate_row(row)
        if reasons:
            rejected.append({**row, "reject_reason": ";".join(reasons)})
        else:
            valid.append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "processed.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(valid)
    with (out_dir / "rejected.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*fields, "reject_reason"])
        writer.writeheader()
        writer.writerows(rejected)
    return {"rows_input": len(rows), "rows_valid": len(valid), "rows_rejected": len(rejected)}


def anomaly_reasons(row: dict[str, str]) -> list[str]:
    """The original analyzer's four thresholds (its values parsed as it parsed them)."""
    reasons = []
    heart_rate, spo2 = int(row["heart_rate"]), int(row["spo2"])
    systolic, diastolic = int(row["systolic_bp"]), int(row["diastolic_bp"])
    if heart_rate < 60 or heart_rate > 160:
        reasons.append("Abnormal heart rate")
    if spo2 < 92:
        reasons.append("Low SpO2")
    if float(row["temp_c"]) > 38.0:
        reasons.append("High temperature")
    if systolic > 140 or diastolic > 90:
        reasons.append("High blood pressure")
    return reasons


def find_anomalies(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One record per flagged row, with its parsed values and its joined reasons."""
    found = []
    for row in rows:
        reasons = anomaly_reasons(row)
        if reasons:
            found.append(
                {
                    "event_time": row["event_time"],
                    "user_id": row["user_id"],
                    "heart_rate": int(row["heart_rate"]),
                    "spo2": int(row["spo2"]),
                    "steps": int(row["steps"]),
                    "temp_c": float(row["temp_c"]),
                    "systolic_bp": int(row["systolic_bp"]),
                    "diastolic_bp": int(row["diastolic_bp"]),
                    "anomaly": ", ".join(reasons),
                }
            )
    return found


def statistics(rows: list[dict[str, str]]) -> dict[str, float]:
    """The original's statistics: a list per vital, then averages and extremes."""
    if not rows:
        return {}
    series = {
        field: [float(r[field]) if field == "temp_c" else int(r[field]) for r in rows]
        for field in ("heart_rate", "spo2", "temp_c", "systolic_bp", "diastolic_bp", "steps")
    }

    def avg(field: str, digits: int = 1) -> float:
        return round(sum(series[field]) / len(series[field]), digits)

    return {
        "avg_heart_rate": avg("heart_rate"),
        "avg_spo2": avg("spo2"),
        "avg_temp": avg("temp_c"),
        "avg_systolic": avg("systolic_bp"),
        "avg_diastolic": avg("diastolic_bp"),
        "avg_steps": avg("steps", 0),
        "max_heart_rate": max(series["heart_rate"]),
        "min_heart_rate": min(series["heart_rate"]),
        "max_temp": max(series["temp_c"]),
        "min_spo2": min(series["spo2"]),
    }


def to_decimals(value: Any) -> Any:
    """Floats as Decimals, as the original converted its item for DynamoDB."""
    if isinstance(value, list):
        return [to_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: to_decimals(v) for k, v in value.items()}
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def marshal(item: dict[str, Any]) -> int:
    """The size of the item as `put_item` would send it (boto3's TypeSerializer, else JSON)."""
    try:
        from boto3.dynamodb.types import TypeSerializer
    except ImportError:
        return len(json.dumps(item, default=str))
    wire = {k: TypeSerializer().serialize(v) for k, v in item.items()}
    return len(json.dumps(wire))


def analyze(processed: Path) -> dict[str, Any]:
    """The original analyzer's compute over a processed CSV (no AWS calls)."""
    rows = list(csv.DictReader(processed.read_bytes().decode("utf-8").splitlines()))
    anomalies = find_anomalies(rows)
    stats = statistics(rows)
    item = to_decimals(
        {
            "correlation_id": f"local/{processed.name}@null",
            "analysis_id": f"analysis_{int(time.time())}",
            "source_file": processed.name,
            "records_analyzed": len(rows),
            "statistics": stats,
            "anomalies": anomalies,
            "insights": [],
            "recommendations": [],
            "summary": f"{len(anomalies)} anomalies detected in {len(rows)} records.",
            "notification_sent": False,
            "ttl": int(time.time()) + 7 * 24 * 3600,
        }
    )
    return {"rows_analyzed": len(rows), "anomalies": len(anomalies), "item_bytes": marshal(item)}


def ingest_and_analyze(path: Path, out_dir: Path) -> dict[str, Any]:
    """The original system's whole compute: ingest, then analyze its processed CSV, timed
    each (seconds)."""
    started = time.perf_counter()
    counts = process(path, out_dir)
    ingested = time.perf_counter()
    analysis = analyze(out_dir / "processed.csv")
    done = time.perf_counter()
    return {
        **counts,
        **analysis,
        "ingest_seconds": round(ingested - started, 3),
        "analyze_seconds": round(done - ingested, 3),
    }


if __name__ == "__main__":
    print(ingest_and_analyze(Path(sys.argv[1]), Path(sys.argv[2])))
