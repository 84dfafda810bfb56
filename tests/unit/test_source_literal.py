"""`engine.source_literal`: a file named to DuckDB's read functions is that file, whatever
glob characters its folder's name holds (DuckDB globs every path it reads)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from healthpipe.dataops.engine import glob_escape, source_list, source_literal


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """`study[2025]*?/x.parquet` (3 rows) and a decoy `study2*?/x.parquet` (1 row), which the
    unescaped first path matches as a pattern."""
    mine, decoy = tmp_path / "study[2025]*?", tmp_path / "study2*?"
    for folder, rows in ((mine, 3), (decoy, 1)):
        folder.mkdir()
        with duckdb.connect() as con:
            target = str(folder / "x.parquet").replace("'", "''")
            con.execute(f"COPY (SELECT range AS n FROM range({rows})) TO '{target}'")
    return mine, decoy


def count(sql_source: str) -> int:
    with duckdb.connect() as con:
        (n,) = con.execute(f"SELECT count(*) FROM read_parquet({sql_source})").fetchone() or (0,)
    return int(n)


def test_the_bare_path_reads_the_decoy(folders: tuple[Path, Path]) -> None:
    mine, _ = folders
    assert count(f"'{mine / 'x.parquet'}'") == 1  # what the lake and ingest did before


def test_source_literal_and_list_read_that_file_only(folders: tuple[Path, Path]) -> None:
    mine, _ = folders
    assert count(source_literal(mine / "x.parquet")) == 3
    assert count(source_list([mine / "x.parquet", mine / "x.parquet"])) == 6


def test_glob_escape_keeps_other_characters() -> None:
    assert glob_escape("/d/a[1]*?b]/f's.csv") == "/d/a[[]1][*][?]b]/f's.csv"
    assert source_literal("/d/f's.csv") == "'/d/f''s.csv'"
