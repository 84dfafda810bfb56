"""The outputs keep the file's order without a sort, which holds only while their queries are
streaming filters and projections: DuckDB plans some expressions as joins (`x IN (six
values)` became a MARK hash join), and such a join let whole vectors of a 10M-row COPY land
out of order. These tests hold the output expressions to join-free plans, and check the
order of every output on a file of many vectors."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.dataops.validation.common import (
    processed_csv_cells,
    processed_parquet_cells,
    rejected_cells,
)
from healthpipe.domain.formula import guard_formula_sql

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note"


def _plan(sql: str) -> str:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('2025-01-01T00:00:00Z', 'u', '70', '98', "
        "'1', '36.6', '120', '80', 'x', 1, TIMESTAMPTZ '2025-01-01 00:00:00+00')) "
        "v(event_time, user_id, heart_rate, spo2, steps, temp_c, systolic_bp, diastolic_bp, "
        'note, "__hp_row__", "__hp_event_instant__")'
    )
    return "\n".join(str(row[1]) for row in con.execute(f"EXPLAIN {sql}").fetchall())


def test_output_expressions_plan_without_joins(tmp_path: Path) -> None:
    source = tmp_path / "h.csv"
    source.write_text(HEADER + "\n")
    header = read_header(source)
    cells = [
        processed_csv_cells(header),
        processed_parquet_cells(header, '"__hp_row__"'),
        rejected_cells(header),
    ]
    for select in cells:
        plan = _plan(f"SELECT {select} FROM t")
        assert "JOIN" not in plan.upper(), plan


def test_the_formula_check_itself_is_not_a_join() -> None:
    assert "JOIN" not in _plan(f"SELECT {guard_formula_sql('user_id')} FROM t").upper()


def _good(i: int) -> str:
    users = ["u1", "=cmd", "+x", "-y", "@z", "\tq"]
    user = users[i % len(users)]
    return (
        f"2025-09-{1 + i // 86400 % 28:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,"
        f'"{user}",{60 + i % 40},98,{i % 500},36.6,120,80,n{i}'
    )


def test_every_output_keeps_the_file_order_on_many_vectors(tmp_path: Path) -> None:
    rows = [_good(i) for i in range(60_000)]
    for i in range(0, len(rows), 97):  # failing rows all along the file
        rows[i] = rows[i].replace(",98,", ",30,", 1)
    for i in range(50, len(rows), 1003):  # repeats of the reading before
        rows[i] = rows[i - 1]
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    out = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    result = validate_file(
        source,
        read_header(source),
        load_profile("plausible"),
        out,
        now_iso="2026-01-01T00:00:00+00:00",
        limits=EngineLimits(memory_limit_mb=128, threads=2, temp_dir=tmp_path / "duck"),
    )
    assert result.rows_rejected > 600
    with out.rejected_csv.open(newline="") as handle:
        rejected = [int(r["source_row"]) for r in csv.DictReader(handle)]
    assert rejected == sorted(rejected)
    with out.processed_csv.open(newline="") as handle:
        notes = [r["note"] for r in csv.DictReader(handle)]
    assert [int(n[1:]) for n in notes] == sorted(int(n[1:]) for n in notes)
    parquet = duckdb.sql(
        f"SELECT source_row FROM read_parquet('{out.processed_parquet}', file_row_number = true) "
        "ORDER BY file_row_number"
    ).fetchall()
    assert [r[0] for r in parquet] == sorted(r[0] for r in parquet)
