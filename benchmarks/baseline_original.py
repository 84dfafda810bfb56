"""The original ingestor's algorithm, reproduced as it was, to measure against.

It decodes the whole file into memory, parses it with `csv.DictReader` into a list of
dicts, calls one Python validation function per row, and writes the valid and the rejected
rows with `csv.DictWriter`. Rules are the original ones (the `seed` profile): every required
field non-empty, inclusive numeric ranges, diastolic_bp <= systolic_bp.

    python benchmarks/baseline_original.py INPUT.csv OUTPUT_DIR
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

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


if __name__ == "__main__":
    print(process(Path(sys.argv[1]), Path(sys.argv[2])))
