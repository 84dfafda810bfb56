"""Processed-readings Parquet files, shaped like ingest's output, for the analysis tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from support.duck import insert_rows

# The columns of an export, as a CSV header.
HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"
VITALS = "heart_rate DOUBLE, spo2 DOUBLE, steps DOUBLE, temp_c DOUBLE, systolic_bp DOUBLE, "


def _write(path: Path, columns: str, rows: list[tuple[Any, ...]]) -> Path:
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TABLE r ({columns})")
        insert_rows(con, "r", rows)
        con.execute(f"COPY r TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return path


def write_processed(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    """rows: (source_row, event_time, user_id, hr, spo2, steps, temp, sbp, dbp)."""
    columns = (
        f"source_row BIGINT, event_time TIMESTAMPTZ, user_id VARCHAR, {VITALS}diastolic_bp DOUBLE"
    )
    return _write(path, columns, rows)


def write_readings(path: Path, readings: list[dict[str, Any]]) -> Path:
    """readings: dicts with source_row, event_time (a datetime), user_id and the vitals;
    the file also carries event_time_text, as ingest's does."""
    columns = (
        "source_row BIGINT, event_time TIMESTAMPTZ, event_time_text VARCHAR, user_id VARCHAR, "
        f"{VITALS}diastolic_bp DOUBLE"
    )
    rows = [
        (
            r["source_row"],
            r["event_time"],
            r["event_time"].isoformat(),
            r["user_id"],
            r["heart_rate"],
            r["spo2"],
            r["steps"],
            r["temp_c"],
            r["systolic_bp"],
            r["diastolic_bp"],
        )
        for r in readings
    ]
    return _write(path, columns, rows)


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    """An export CSV: `header`, then one line per row (each already comma-joined)."""
    path.write_text("\n".join([header, *rows]) + "\n")
    return path
