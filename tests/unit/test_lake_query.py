"""The lake's read-only SQL (dataops/lake.py) over hand-written Parquet in the bucket layout."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from healthpipe.dataops.lake import FINDINGS_COLUMNS, READINGS_COLUMNS, Lake, LakeQueryError

READING = (
    "SELECT {row} AS source_row, TIMESTAMPTZ '2025-06-0{day} 10:00:00+00' AS event_time, "
    "'2025-06-0{day}T10:00:00Z' AS event_time_text, '{user}' AS user_id, 70.0 AS heart_rate, "
    "97.0 AS spo2, 0.0 AS steps, 36.8 AS temp_c, 120.0 AS systolic_bp, 80.0 AS diastolic_bp"
)
FINDING = (
    "SELECT {row}::BIGINT AS source_row, '{user}' AS user_id, "
    "TIMESTAMPTZ '2025-06-01 10:00:00+00' AS event_time, 'heart_rate' AS metric, "
    "'news2' AS kind, 3::INTEGER AS severity, 131.0 AS value, 'hr_high' AS rule, "
    "NULL::DOUBLE AS systolic_bp, NULL::DOUBLE AS diastolic_bp, NULL::VARCHAR AS bp_trigger, "
    "false AS during_activity, false AS conflicting, true AS with_clinical_finding"
)


def write(sql: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    con.close()


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    bucket = tmp_path / "bucket"
    lake = bucket / "lake" / "readings"  # pb=<participant bucket>/dt=<reading day>/<dataset>
    write(
        " UNION ALL ".join(READING.format(row=r, day=1, user="u1") for r in (1, 2, 3)),
        lake / "pb=03" / "dt=2025-06-01" / "aaaa.parquet",
    )
    write(
        READING.format(row=1, day=2, user="u1"), lake / "pb=03" / "dt=2025-06-02" / "bbbb.parquet"
    )
    write(
        READING.format(row=2, day=2, user="u2"), lake / "pb=41" / "dt=2025-06-02" / "bbbb.parquet"
    )
    write(FINDING.format(row=2, user="u1"), bucket / "analyzed" / "aaaa_anomalies.parquet")
    write(
        " UNION ALL ".join(FINDING.format(row=r, user="u2") for r in (1, 2)),
        bucket / "analyzed" / "bbbb_anomalies.parquet",
    )
    (bucket / "analyzed" / "aaaa.json").write_text("{}", encoding="utf-8")  # not a finding
    return Lake(bucket)


def test_readings_holds_every_processed_row_with_its_day_as_text(lake: Lake) -> None:
    result = lake.query("SELECT dt, count(*) AS n FROM readings GROUP BY dt ORDER BY dt")
    assert result.columns == ["dt", "n"]
    assert result.types[0] == "VARCHAR"  # as the Glue table's string partition
    assert result.rows == [("2025-06-01", 3), ("2025-06-02", 2)]
    assert lake.query("SELECT count(*) FROM readings WHERE dt >= '2025-06-02'").rows == [(2,)]


def test_readings_carry_the_participant_bucket_as_text(lake: Lake) -> None:
    result = lake.query("SELECT pb, user_id, count(*) FROM readings GROUP BY ALL ORDER BY ALL")
    assert result.types[0] == "VARCHAR"  # as the Glue table's projected partition
    assert result.rows == [("03", "u1", 4), ("41", "u2", 1)]
    assert lake.query("SELECT dataset_id FROM readings WHERE pb = '41'").rows == [("bbbb",)]


def test_findings_carry_the_dataset_id_of_their_file(lake: Lake) -> None:
    result = lake.query("SELECT dataset_id, count(*) FROM findings GROUP BY 1 ORDER BY 1")
    assert result.rows == [("aaaa", 1), ("bbbb", 2)]


def test_readings_join_findings_by_dataset_and_row(lake: Lake) -> None:
    sql = (
        "SELECT f.dataset_id, r.source_row, r.user_id FROM findings f "
        "JOIN readings r USING (dataset_id, source_row) ORDER BY 1, 2"
    )
    assert lake.query(sql).rows == [("aaaa", 2, "u1"), ("bbbb", 1, "u1"), ("bbbb", 2, "u2")]


def test_an_empty_lake_has_typed_empty_views(tmp_path: Path) -> None:
    empty = Lake(tmp_path / "bucket")
    assert empty.query("SELECT count(*) FROM readings").rows == [(0,)]
    assert empty.query("SELECT count(*) FROM findings").rows == [(0,)]
    described = empty.query("DESCRIBE readings").rows
    assert [(r[0], r[1]) for r in described] == [
        (name, "TIMESTAMP WITH TIME ZONE" if kind == "TIMESTAMPTZ" else kind)
        for name, kind in READINGS_COLUMNS
    ]
    assert [r[0] for r in empty.query("DESCRIBE findings").rows] == [n for n, _ in FINDINGS_COLUMNS]


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("COPY (SELECT * FROM readings) TO '{bucket}/analyzed/out.csv'", "COPY"),
        ("ATTACH '{bucket}/analyzed/x.duckdb' AS x", "ATTACH"),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ("INSERT INTO readings SELECT * FROM readings", "INSERT"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA version", "PRAGMA"),
        ("INSTALL httpfs", "LOAD"),
        ("EXPORT DATABASE '{bucket}/analyzed/dump'", "EXPORT"),
    ],
)
def test_statements_that_write_attach_or_configure_are_refused(
    lake: Lake, sql: str, refused: str
) -> None:
    before = sorted(p.name for p in lake.bucket_dir.rglob("*"))
    with pytest.raises(LakeQueryError, match=f"read-only: {refused} statements are refused"):
        lake.query(sql.format(bucket=lake.bucket_dir))
    assert sorted(p.name for p in lake.bucket_dir.rglob("*")) == before


def test_files_outside_the_lake_cannot_be_read(lake: Lake, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(LakeQueryError, match="disabled by configuration"):
        lake.query(f"SELECT * FROM read_csv('{secret}')")
    with pytest.raises(LakeQueryError, match="disabled by configuration"):
        lake.query(f"SELECT * FROM read_text('{lake.bucket_dir / 'raw'}/x.csv')")


def test_only_one_statement_and_bad_sql_is_an_error(lake: Lake) -> None:
    with pytest.raises(LakeQueryError, match="exactly one SQL statement"):
        lake.query("SELECT 1; SELECT 2")
    with pytest.raises(LakeQueryError, match="syntax error"):
        lake.query("SELEC 1")
    with pytest.raises(LakeQueryError, match="nope"):
        lake.query("SELECT nope FROM readings")


def test_info_log_holds_counts_not_values(lake: Lake, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="healthpipe.dataops.lake"):
        lake.query("SELECT user_id, heart_rate FROM readings")
    record = caplog.records[-1]
    assert (record.getMessage(), record.rows, record.columns) == ("lake query", 5, 2)  # type: ignore[attr-defined]
    assert "u1" not in caplog.text and "70.0" not in caplog.text
