"""A vitals file in the original system's own style, for the harness (not the product CLI).

The original's sample files (`shared/data/seed/*.csv`) draw every vital uniformly at random,
independently per reading: heart rate 55-180 bpm with about one reading in nine at 300,
SpO2 90-100 % with about one in twenty at 40, steps 0-4999, temperature 35.5-38.5 °C (one
decimal), systolic 100-140 and diastolic 60-95 mmHg; each user's readings one minute apart
(user after user), times with microseconds. Most readings are clinically abnormal somewhere,
so this is the anomaly-dense shape (issue 17). Readings end before now, so every row's time
passes the default rules; SpO2 40 is rejected by them (`invalid_spo2`), as in the seed files.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

HR_OUTLIER_RATE = 0.11
SPO2_OUTLIER_RATE = 0.05


def _u(salt: int, seed: int) -> str:
    """A uniform number in [0, 1) from a hash of the row number (deterministic)."""
    return f"((hash(i, {seed}, {salt}) % 1000003) / 1000003.0)"


def _int(low: int, high: int, salt: int, seed: int) -> str:
    """A uniform integer in [low, high]."""
    return f"CAST({low} + floor({_u(salt, seed)} * {high - low + 1}) AS INTEGER)"


def uniform_sql(rows: int, users: int, seed: int, end: datetime) -> str:
    per_user = -(-rows // users)
    start = end - timedelta(minutes=per_user)
    start_text = start.strftime("%Y-%m-%d %H:%M:%S.%f")
    hr = f"CASE WHEN {_u(1, seed)} < {HR_OUTLIER_RATE} THEN 300 ELSE {_int(55, 180, 2, seed)} END"
    spo2 = (
        f"CASE WHEN {_u(3, seed)} < {SPO2_OUTLIER_RATE} THEN 40 ELSE {_int(90, 100, 4, seed)} END"
    )
    temp = f"printf('%.1f', 35.5 + floor({_u(5, seed)} * 31) / 10)"
    return (
        f"SELECT strftime(TIMESTAMP '{start_text}' + to_minutes(CAST(i % {per_user} AS BIGINT)), "
        f"'%Y-%m-%dT%H:%M:%S.%fZ') AS event_time, "
        f"'user_' || CAST(i // {per_user} + 1 AS VARCHAR) AS user_id, "
        f"{hr} AS heart_rate, {spo2} AS spo2, {_int(0, 4999, 6, seed)} AS steps, "
        f"{temp} AS temp_c, {_int(100, 140, 7, seed)} AS systolic_bp, "
        f"{_int(60, 95, 8, seed)} AS diastolic_bp "
        f"FROM range({rows}) r(i) ORDER BY i"
    )


def generate_uniform(rows: int, users: int, seed: int, out: Path) -> Path:
    """Write exactly `rows` data rows in the original's style to `out` (ending before now)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    end = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=1)
    end = end.replace(microsecond=801681)  # the seed files' sub-second part, as a style mark
    # spills beside the output (at 50M rows the ordered write spills): DuckDB's default is
    # `.tmp` in the working directory, the checkout when the harness runs
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".spill-") as spill:
        config = {"memory_limit": "512MB", "preserve_insertion_order": True}
        con = duckdb.connect(config={**config, "temp_directory": spill})
        try:
            sql = uniform_sql(rows, users, seed, end)
            con.execute(f"COPY ({sql}) TO '{out}' (FORMAT csv, HEADER true)")
        finally:
            con.close()
    return out
