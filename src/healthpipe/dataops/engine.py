"""DuckDB connections configured for bounded memory (spill to a temp directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from healthpipe import progress
from healthpipe.domain.validation_sql import quote_literal


def glob_escape(path: str) -> str:
    """`path` as a DuckDB glob that matches that path only: each of DuckDB's wildcards `*`,
    `?` and `[` becomes a one-character class (`[*]`, `[?]`, `[[]`), which its globbing reads
    as that character (a `]` outside a class is already literal; a backslash escapes nothing).
    DuckDB globs every path a read function is given, so a workspace under
    `~/data/study[2025]/` would otherwise read `~/data/study2/`'s file of the same name."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in path)


def source_literal(path: Path | str) -> str:
    """The SQL literal of a file for DuckDB's read functions (`read_csv`, `read_parquet`):
    quoted and glob-escaped. A COPY … TO target is not globbed: quote it as it is."""
    return quote_literal(glob_escape(str(path)))


def source_list(paths: list[Path]) -> str:
    """`[…]` of several files for a read function (`source_literal` each)."""
    return "[" + ", ".join(source_literal(p) for p in paths) + "]"


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
