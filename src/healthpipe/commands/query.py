"""`healthpipe query "SQL"`: read-only DuckDB SQL over the workspace's lake (docs/lake.md).

An operator's tool: it prints exactly what the SQL selects, and the lake's rows are the data,
participant ids included (`readings.user_id`, `findings.user_id`). INFO logs carry counts and
timings only. Output: a table (default), `--json` (one object) or `--csv` (cells guarded
against spreadsheet formulas by domain/formula.py). Refused or bad SQL: one line, exit 2.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from healthpipe.commands.options import (
    ConfigOpt,
    JsonOpt,
    LogJsonOpt,
    VerboseOpt,
    WideOpt,
    WorkspaceOpt,
    flag_help,
)
from healthpipe.commands.output import (
    EXIT_UNUSABLE,
    PlainUsage,
    cli_errors,
    fail,
    out,
    require_workspace,
    settings_from,
)

HELP = (
    "Run one read-only SQL query over the workspace's lake: `readings` (every valid row, "
    "with its partition `dt`) and `findings` (every anomaly, with its `dataset_id`). "
    "Prints what the SQL selects, participant ids included: an operator's tool."
)

CsvOpt = Annotated[
    bool,
    typer.Option(
        "--csv",
        help=flag_help("CSV on stdout (cells guarded against spreadsheet formulas)"),
        show_default=False,
    ),
]


def cell_text(value: Any) -> str:
    """A value as text: ISO dates and times, `` for NULL, numbers as Python writes them."""
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def json_value(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities as null, dates as ISO text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return cell_text(value)


def write_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    from healthpipe.domain.formula import guard_formula

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([guard_formula(name) for name in columns])
    for row in rows:
        writer.writerow([guard_formula(cell_text(value)) for value in row])


def print_table(columns: list[str], rows: list[tuple[Any, ...]], wide: bool) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=wide)
    for name, value in zip(columns, rows[0] if rows else [None] * len(columns), strict=True):
        numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        table.add_column(escape(name), justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell_text(value)) for value in row))
    out.print(table)
    out.print(f"{len(rows):,} row(s)", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command(help=HELP, cls=PlainUsage)
    def query(
        sql: Annotated[str, typer.Argument(metavar="SQL", help="One SELECT statement")],
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
        as_json: JsonOpt = False,
        as_csv: CsvOpt = False,
        wide: WideOpt = False,
        verbose: VerboseOpt = False,
        log_json: LogJsonOpt = False,
    ) -> None:
        from healthpipe import logs
        from healthpipe.dataops.engine import EngineLimits
        from healthpipe.dataops.lake import Lake, LakeQueryError

        logs.configure(verbose, log_json)
        with cli_errors(verbose):
            if as_json and as_csv:
                raise fail("give --json or --csv, not both", EXIT_UNUSABLE)
            settings = settings_from(workspace, config)
            require_workspace(settings)
            limits = EngineLimits(settings.duckdb_memory_mb, settings.duckdb_threads)
            try:
                result = Lake(settings.bucket_dir.resolve()).query(sql, limits)
            except LakeQueryError as exc:
                raise fail(str(exc), EXIT_UNUSABLE) from None
        if as_json:
            document = {
                "columns": result.columns,
                "types": result.types,
                "rows": [[json_value(v) for v in row] for row in result.rows],
            }
            sys.stdout.write(json.dumps(document) + "\n")
        elif as_csv:
            write_csv(result.columns, result.rows)
        else:
            print_table(result.columns, result.rows, wide)
