"""The anomaly file's known-valued text columns are written as ENUMs (findings.stored_sql):
the same Parquet columns, rows and statistics as text, and every value the SQL can give is
one of the ENUM's."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import duckdb

from healthpipe.dataops.analysis.findings import STORED_ENUMS, decorated_sql, stored_sql
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import ANOMALY_ITEMS, bp_trigger_sql, kinds


def every_value() -> str:
    """One row per value of each column (NULL elsewhere), and one of all NULLs."""
    values = {
        "metric": [i.metric for i in ANOMALY_ITEMS],
        "kind": list(kinds()),
        "rule": [i.rule for i in ANOMALY_ITEMS],
        "bp_trigger": list(get_args(cl.BpTrigger)),
    }
    rows = [
        "(" + ", ".join(f"'{v}'" if c == column else "NULL" for c in values) + f", {n})"
        for n, (column, found) in enumerate(values.items())
        for v in found
    ]
    rows.append("(NULL, NULL, NULL, NULL, -1)")
    return f"SELECT * FROM (VALUES {', '.join(rows)}) t({', '.join(values)}, n)"


def test_enum_columns_are_written_as_the_same_text_columns(tmp_path: Path) -> None:
    text, stored = tmp_path / "text.parquet", tmp_path / "stored.parquet"
    con = duckdb.connect()
    con.execute(f"COPY ({every_value()}) TO '{text}' (FORMAT parquet, COMPRESSION zstd)")
    con.execute(f"COPY ({stored_sql(every_value())}) TO '{stored}' (FORMAT parquet)")
    schema = "SELECT name, type, converted_type, logical_type FROM parquet_schema('{}')"
    assert (
        con.execute(schema.format(stored)).fetchall() == con.execute(schema.format(text)).fetchall()
    )
    described = con.execute(f"DESCRIBE SELECT * FROM '{stored}'").fetchall()
    assert {name: kind for name, kind, *_ in described} == {
        "metric": "VARCHAR",
        "kind": "VARCHAR",
        "rule": "VARCHAR",
        "bp_trigger": "VARCHAR",
        "n": "INTEGER",
    }
    read = "SELECT * FROM '{}' ORDER BY ALL"
    assert con.execute(read.format(stored)).fetchall() == con.execute(read.format(text)).fetchall()
    stats = (
        "SELECT path_in_schema, stats_min_value, stats_max_value, stats_null_count "
        "FROM parquet_metadata('{}') ORDER BY ALL"
    )
    assert (
        con.execute(stats.format(stored)).fetchall() == con.execute(stats.format(text)).fetchall()
    )
    assert set(STORED_ENUMS) == {"metric", "kind", "rule", "bp_trigger"}


def test_the_sql_s_bp_triggers_are_the_enum_s() -> None:
    """bp_trigger_sql writes its names as literals: each is a value of clinical.BpTrigger."""
    sql = bp_trigger_sql("'hypertensive_crisis'", "s", "d")
    con = duckdb.connect()
    found = {
        row[0]
        for row in con.execute(
            f"SELECT {sql} FROM (VALUES (200.0, 130.0), (200.0, 80.0), (120.0, 130.0)) v(s, d)"
        ).fetchall()
    }
    assert found == set(get_args(cl.BpTrigger))


def test_the_decorated_rows_name_metric_kind_and_rule_as_the_enums() -> None:
    """decorated_sql looks the names up in typed lists: the ENUM values come out as they
    are written, with no string made per row and none cast afterwards."""
    con = duckdb.connect()
    con.execute("CREATE TABLE users AS SELECT 1 AS uid, 'p1' AS user_id")
    part = (
        "SELECT 1 AS uid, 7 AS source_row, TIMESTAMPTZ '2025-06-01 00:00:00+00' AS event_time, "
        "CAST(0 AS UTINYINT) AS item, CAST(5 AS UTINYINT) AS band, CAST(3 AS UTINYINT) AS "
        "severity, CAST(0 AS UTINYINT) AS flags, 190.0 AS value, 190.0 AS sbp, 130.0 AS dbp"
    )
    row = con.execute(
        "SELECT typeof(metric), typeof(kind), typeof(rule), metric, kind, rule, bp_trigger "
        f"FROM ({decorated_sql(f'({part})')})"
    ).fetchone()
    assert row is not None
    assert list(row[:3]) == [STORED_ENUMS["metric"], STORED_ENUMS["kind"], STORED_ENUMS["rule"]]
    assert list(row[3:]) == ["blood_pressure", "hypertensive_crisis", "acc_aha", "both"]
