"""DuckDB connections configured for bounded memory (spill to a temp directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from healthpipe import progress


@dataclass(frozen=True)
class EngineLimits:
    memory_limit_mb: int = 256
    threads: int = 0  # 0: one per core
    temp_dir: Path | None = None


def connect(limits: EngineLimits) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": f"{limits.memory_limit_mb}MB",
        "threads": limits.threads or (os.cpu_count() or 1),
        "preserve_insertion_order": False,
    }
    if limits.temp_dir is not None:
        limits.temp_dir.mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(limits.temp_dir)
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    progress.track(con)  # a display on a terminal polls its progress; else nothing
    return con
