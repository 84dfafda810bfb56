"""The lake on one machine: read-only SQL over the workspace's processed and analysed Parquet.

Two views, the same names and columns Athena sees on AWS (docs/lake.md):

- `readings`: every valid row of every analysed file, from the lake analyze writes
  (`lake/readings/pb=<NN>/dt=<day>/<dataset_id>.parquet`), with the hive partitions `pb`
  (participant bucket) and `dt` (the reading day, UTC) as columns and `dataset_id` taken
  from the file name. `pb` and `dt` are text (`'07'`, `'2026-11-30'`), as in the Glue table
  `lake_readings`, so `WHERE pb = '07' AND dt >= '2026-11-01'` means the same on both
  runtimes and reads only those partitions.
- `findings`: every analysed file's anomalies (`analyzed/<dataset_id>_anomalies.parquet`),
  with `dataset_id` taken from the file name.

Read-only, by two locks: only `SELECT` (and `EXPLAIN`) statements run, as DuckDB's own parser
classifies them (COPY, ATTACH, CREATE, INSERT, SET, PRAGMA, INSTALL … are refused before
they run); and the connection can open no file outside those two folders
(`allowed_directories` with `enable_external_access = false`, then `lock_configuration`, so no
statement can lift it; see DuckDB's "Securing DuckDB"). The views are created before the lock.

The rows are the data: participant ids included. This module returns what the SQL selects and
logs only counts and timings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from healthpipe import constants as c
from healthpipe.dataops.engine import EngineLimits, connect, glob_escape
from healthpipe.domain.identity import LAKE_READINGS_PREFIX
from healthpipe.domain.validation_sql import quote_literal as _literal

log = logging.getLogger(__name__)

READINGS, FINDINGS = "readings", "findings"
ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})

# The columns of each view when the lake holds no file of its kind yet (a typed empty view,
# so `select count(*) from readings` is 0 on a new workspace). tests/unit/test_lake_query.py
# holds them equal to the files the pipeline writes.
READINGS_COLUMNS = (
    ("source_row", "BIGINT"),
    ("event_time", "TIMESTAMPTZ"),
    ("event_time_text", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("heart_rate", "DOUBLE"),
    ("spo2", "DOUBLE"),
    ("steps", "DOUBLE"),
    ("temp_c", "DOUBLE"),
    ("systolic_bp", "DOUBLE"),
    ("diastolic_bp", "DOUBLE"),
    ("pb", "VARCHAR"),
    ("dt", "VARCHAR"),
    ("dataset_id", "VARCHAR"),
)
FINDINGS_COLUMNS = (
    ("source_row", "BIGINT"),
    ("user_id", "VARCHAR"),
    ("event_time", "TIMESTAMPTZ"),
    ("metric", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("severity", "INTEGER"),
    ("value", "DOUBLE"),
    ("rule", "VARCHAR"),
    ("systolic_bp", "DOUBLE"),
    ("diastolic_bp", "DOUBLE"),
    ("bp_trigger", "VARCHAR"),
    ("during_activity", "BOOLEAN"),
    ("conflicting", "BOOLEAN"),
    ("with_clinical_finding", "BOOLEAN"),
    ("dataset_id", "VARCHAR"),
)
ANOMALIES_SUFFIX = "_anomalies.parquet"
# The dataset id in a file name: `<dataset_id>.parquet`, `<dataset_id>_anomalies.parquet`.
READINGS_FILE = r"/([0-9a-f]+)\.parquet$"
READINGS_GLOB = "pb=*/dt=*/*.parquet"
FINDINGS_FILE = r"([0-9a-f]+)_anomalies\.parquet$"


class LakeQueryError(ValueError):
    """The SQL is not a read-only query the lake can answer (the message says why)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class Lake:
    """The lake of a local workspace: its bucket folder."""

    bucket_dir: Path

    @property
    def readings_dir(self) -> Path:
        return self.bucket_dir / LAKE_READINGS_PREFIX

    @property
    def findings_dir(self) -> Path:
        return self.bucket_dir / c.ANALYZED_PREFIX

    def query(self, sql: str, limits: EngineLimits | None = None) -> QueryResult:
        """Run one read-only statement over `readings` and `findings`; LakeQueryError if
        the SQL is refused or DuckDB cannot run it."""
        started = time.perf_counter()
        con = connect(limits or EngineLimits())
        try:
            self._create_views(con)
            _lock(con, [self.readings_dir, self.findings_dir])
            statement = _one_read_only_statement(con, sql)
            try:
                cursor = con.execute(statement.query)
                columns = [d[0] for d in cursor.description or []]
                types = [str(d[1]) for d in cursor.description or []]
                rows = cursor.fetchall()
            except duckdb.Error as exc:
                raise LakeQueryError(str(exc)) from None
        finally:
            con.close()
        log.info(
            "lake query",
            extra={
                "rows": len(rows),
                "columns": len(columns),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return QueryResult(columns, types, rows)

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        if any(self.readings_dir.glob(READINGS_GLOB)):
            pattern = _literal(glob_escape(str(self.readings_dir)) + "/" + READINGS_GLOB)
            con.execute(
                # the partitions in the Glue table's order (DuckDB appends them by name)
                f"CREATE VIEW {READINGS} AS SELECT * EXCLUDE (filename, pb, dt), pb, dt, "
                f"{_dataset_id(READINGS_FILE)} AS dataset_id FROM read_parquet({pattern}, "
                "filename = true, hive_partitioning = true, "
                "hive_types = {'pb': VARCHAR, 'dt': VARCHAR}, "
                "union_by_name = true)"
            )
        else:
            con.execute(f"CREATE VIEW {READINGS} AS {_empty(READINGS_COLUMNS)}")
        if any(self.findings_dir.glob(f"*{ANOMALIES_SUFFIX}")):
            pattern = _literal(glob_escape(str(self.findings_dir)) + f"/*{ANOMALIES_SUFFIX}")
            con.execute(
                f"CREATE VIEW {FINDINGS} AS SELECT * EXCLUDE (filename), "
                f"{_dataset_id(FINDINGS_FILE)} AS dataset_id FROM read_parquet({pattern}, "
                "filename = true, "
                "hive_partitioning = false, union_by_name = true)"
            )
        else:
            con.execute(f"CREATE VIEW {FINDINGS} AS {_empty(FINDINGS_COLUMNS)}")


def _lock(con: duckdb.DuckDBPyConnection, folders: list[Path]) -> None:
    """No file outside `folders`, no extension, and no statement can change that."""
    # the folders as the views name them (glob-escaped) and as the files they match are named
    names = sorted({form for f in folders for form in (str(f), glob_escape(str(f)))})
    allowed = ", ".join(_literal(name + "/") for name in names)
    con.execute(f"SET allowed_directories = [{allowed}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _one_read_only_statement(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise LakeQueryError(str(exc)) from None
    if len(statements) != 1:
        raise LakeQueryError(f"give exactly one SQL statement (got {len(statements)})")
    statement = statements[0]
    if statement.type not in ALLOWED_STATEMENTS:
        kind = str(statement.type).rsplit(".", 1)[-1]
        raise LakeQueryError(f"the lake is read-only: {kind} statements are refused (SELECT only)")
    return statement


def _dataset_id(file_pattern: str) -> str:
    return f"regexp_extract(filename, {_literal(file_pattern)}, 1)"


def _empty(columns: tuple[tuple[str, str], ...]) -> str:
    cells = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns)
    return f"SELECT {cells} WHERE false"
