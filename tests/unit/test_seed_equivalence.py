"""With `--rules seed`, the valid/rejected split of both seed sample files equals, row for row,
what the original rules give — computed here independently, in plain Python, from the rules as
written in issue 2:

- required event_time, user_id, heart_rate, spo2, steps, temp_c, systolic_bp, diastolic_bp
  non-empty (`missing_<field>`);
- heart_rate 50–180, spo2 90–100, steps 0–50000, temp_c 35.0–40.0, systolic_bp 90–180,
  diastolic_bp 60–120, inclusive; NaN/inf/non-numeric values rejected (`invalid_<field>`);
- diastolic_bp ≤ systolic_bp (`dbp_gt_sbp`);
- duplicate readings (same user_id and event_time, after the first) rejected.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from healthpipe.cli import app

REQUIRED = ["event_time", "user_id", "heart_rate", "spo2", "steps", "temp_c",
            "systolic_bp", "diastolic_bp"]  # fmt: skip
RANGES = {
    "heart_rate": (50.0, 180.0),
    "spo2": (90.0, 100.0),
    "steps": (0.0, 50000.0),
    "temp_c": (35.0, 40.0),
    "systolic_bp": (90.0, 180.0),
    "diastolic_bp": (60.0, 120.0),
}
DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def number(text: str) -> float | None:
    """A finite decimal number, or None (NaN, inf, words, hex, digit separators...)."""
    text = text.strip()
    if not DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def original_rules(rows: list[dict[str, str]]) -> dict[int, set[str]]:
    """source_row (1-based) -> the set of reasons of every row the original rules reject."""
    rejected: dict[int, set[str]] = {}
    seen: set[tuple[str, str]] = set()
    for index, rec in enumerate(rows, start=1):
        reasons: set[str] = set()
        for name in REQUIRED:
            if not (rec.get(name) or "").strip():
                reasons.add(f"missing_{name}")
        values: dict[str, float | None] = {}
        for name, (low, high) in RANGES.items():
            text = rec.get(name) or ""
            if not text.strip():
                continue
            values[name] = value = number(text)
            if value is None or not low <= value <= high:
                reasons.add(f"invalid_{name}")
        sbp, dbp = values.get("systolic_bp"), values.get("diastolic_bp")
        if sbp is not None and dbp is not None and dbp > sbp:
            reasons.add("dbp_gt_sbp")
        user, when = (rec.get("user_id") or "").strip(), (rec.get("event_time") or "").strip()
        if user and when:
            if (user, when) in seen:
                reasons.add("duplicate_reading")
            seen.add((user, when))
        if reasons:
            rejected[index] = reasons
    return rejected


def run_seed_rules(source: Path, workspace: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        app, ["run", str(source), "--rules", "seed", "--json", "--workspace", str(workspace)]
    )
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout)["files"]
    assert outcome["status"] == "processed"
    manifest = json.loads(
        (workspace / "bucket" / "manifests" / f"{outcome['dataset_id']}.json").read_text()
    )
    assert manifest["rules_profile"] == "seed"
    return {"outcome": outcome, "manifest": manifest}


@pytest.mark.parametrize("name", ["sample_data.csv", "synthetic_health_data.csv"])
def test_seed_profile_split_equals_the_original_rules(
    seed_dir: Path, tmp_path: Path, name: str
) -> None:
    source = seed_dir / name
    with source.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    expected = original_rules(rows)
    expected_valid = [i for i in range(1, len(rows) + 1) if i not in expected]

    workspace = tmp_path / "ws"
    ran = run_seed_rules(source, workspace)
    outcome, manifest = ran["outcome"], ran["manifest"]
    assert isinstance(outcome, dict) and isinstance(manifest, dict)
    bucket = workspace / "bucket"

    # rejected rows, with every reason
    got: dict[int, set[str]] = {}
    rejected_key = manifest["outputs"]["rejected_csv"]
    if rejected_key:
        with (bucket / rejected_key).open(newline="", encoding="utf-8") as handle:
            for rec in csv.DictReader(handle):
                got[int(rec["source_row"])] = set(rec["reject_reason"].split(";"))
    assert got == expected

    # valid rows: the Parquet output carries source_row; the CSV output the same rows, in order
    con = duckdb.connect(":memory:")
    try:
        parquet = bucket / manifest["outputs"]["processed_parquet"]
        valid_rows = [
            int(r[0])
            for r in con.execute(
                f"SELECT source_row FROM read_parquet('{parquet}') ORDER BY source_row"
            ).fetchall()
        ]
    finally:
        con.close()
    assert valid_rows == expected_valid
    with (bucket / manifest["outputs"]["processed_csv"]).open(newline="", encoding="utf-8") as h:
        processed = [tuple(rec[c] for c in REQUIRED) for rec in csv.DictReader(h)]
    assert processed == [tuple(rows[i - 1][c].strip() for c in REQUIRED) for i in expected_valid]

    # counts: JSON output and manifest agree with the independent computation
    assert outcome["rows"] == {
        "input": len(rows),
        "valid": len(expected_valid),
        "rejected": len(expected),
    }
    by_reason = Counter(reason for reasons in expected.values() for reason in reasons)
    assert manifest["counts"]["by_reason"] == dict(by_reason)


def test_the_independent_rules_reject_what_issue_2_says() -> None:
    """The reference implementation above is itself checked on hand-made rows."""
    good = dict(zip(REQUIRED, ["t1", "u", "50", "90", "0", "35.0", "90", "60"], strict=True))
    rows = [
        good,
        {**good, "event_time": "t2", "heart_rate": "180", "spo2": "100", "steps": "50000",
         "temp_c": "40.0", "systolic_bp": "180", "diastolic_bp": "120"},
        {**good, "event_time": "t3", "heart_rate": "nan", "spo2": " ", "temp_c": "inf"},
        {**good, "event_time": "t4", "systolic_bp": "100", "diastolic_bp": "101"},
        {**good},  # duplicate of row 1
        {**good, "event_time": "t5", "steps": "1_000", "heart_rate": "0x40"},
    ]  # fmt: skip
    assert original_rules(rows) == {
        3: {"invalid_heart_rate", "missing_spo2", "invalid_temp_c"},
        4: {"dbp_gt_sbp"},
        5: {"duplicate_reading"},
        6: {"invalid_steps", "invalid_heart_rate"},
    }
