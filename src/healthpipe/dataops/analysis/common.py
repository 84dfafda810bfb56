"""What every part of the analysis shares: its limits and settings, and rows fetched as
plain values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from healthpipe.dataops.engine import source_list, source_literal
from healthpipe.domain import clinical as cl

TOP_ANOMALIES = 50
TOP_EPISODES = 100
TOP_USERS = 25
# the name of a group's readings (`buckets.split_participants`): every Parquet file of a folder
GROUP_PARQUET = "*.parquet"


@dataclass(frozen=True)
class AnalysisLimits:
    """How much the analysis lists, and its clinical context settings: the gap that breaks
    an episode (`episode_gap_seconds`) and the steps above which a reading is during
    activity (`activity_steps_above`)."""

    top_anomalies: int = TOP_ANOMALIES
    top_episodes: int = TOP_EPISODES
    top_users: int = TOP_USERS
    episode_gap_seconds: float = cl.EPISODE_GAP_SECONDS
    activity_steps_above: float = cl.ACTIVITY_STEPS_ABOVE


def grouping_id(columns: Sequence[str], grouped: Sequence[str]) -> int:
    """DuckDB's `grouping_id(<columns>)` of the grouping set that groups `grouped`: a bit,
    the first column's the highest, for each of `columns` not grouped."""
    return int("".join("0" if c in grouped else "1" for c in columns), 2)


def parquet_source(path: Path) -> str:
    """`path` for `read_parquet`: a Parquet file, or a group's readings, `<folder>/*.parquet`
    (`GROUP_PARQUET`), listed here, file by file: DuckDB would read any part of the folder's
    path as a pattern (`engine.source_literal`). A processed file's name is never
    `*.parquet` (it ends in its dataset id)."""
    if path.name == GROUP_PARQUET:
        return source_list(sorted(path.parent.glob(GROUP_PARQUET)))
    return source_literal(path)


def fetch_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def clean(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float):
            value = round(value, 4)
        out[key] = iso(value)
    return out
