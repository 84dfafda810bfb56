"""The staged path (files without malformed records) and the table path write the same
bytes and count the same: checked by forcing the table path on the same file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthpipe.dataops import validate as validate_module
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.validate import SplitPaths, validate_file
from healthpipe.domain.rules import load_profile
from healthpipe.synthetic import SyntheticSpec, generate_csv

NOW = "2026-11-25T12:00:00+00:00"
TRICKY_ROWS = (
    "2026-11-01T00:00:00Z,u1,70,98,100,36.6,120,80\n"
    "2026-11-01 00:00:00+00:00,u1,71,98,100,36.6,120,80\n"  # same instant: duplicate
    "2026-11-01T00:01:00Z,u1,nan,98,100,36.6,120,80\n"
    "2026-11-01T00:02:00Z,u1,1_000,98,100,36.6,120,80\n"
    "2026-11-01T00:03:00Z,u1,\t70,98,100,36.6,120,80\n"
    "2026-11-01T00:04:00Z,u1,70,98,1e2,36.6,120,80\n"
    "2026-11-01T00:05:00Z,=cmd(),70,98,100,36.6,120,80\n"
    "2026-11-01T00:05:00Z,=cmd(),70,98,100,36.6,120,80\n"
    "2026-11-01T00:06:00Z,u2,70,98,100,36.6,120,120\n"
)


def _run(path: Path, out: Path, profile: str) -> dict[str, object]:
    out.mkdir()
    split = SplitPaths(out / "p.csv", out / "p.parquet", out / "r.csv")
    result = validate_file(
        path,
        read_header(path),
        load_profile(profile),
        split,
        now_iso=NOW,
        limits=EngineLimits(memory_limit_mb=128, temp_dir=out / "tmp"),
    )
    return result.__dict__


@pytest.mark.parametrize("profile", ["plausible", "seed"])
def test_streaming_and_table_paths_agree(
    tmp_path: Path, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = generate_csv(
        SyntheticSpec(rows=3000, users=7, seed=3, duplicate_rate=0.02), tmp_path / "in.csv"
    )
    with source.open("a", encoding="utf-8") as handle:
        handle.write(TRICKY_ROWS)
    streamed = _run(source, tmp_path / "stream", profile)
    monkeypatch.setattr(validate_module, "validate_staged", lambda *a, **k: None)
    tabled = _run(source, tmp_path / "table", profile)
    assert json.dumps(streamed, sort_keys=True) == json.dumps(tabled, sort_keys=True)
    assert streamed["reasons"]["duplicate_reading"] >= 2  # type: ignore[index]
    for name in ("p.csv", "r.csv"):
        assert (tmp_path / "stream" / name).read_bytes() == (tmp_path / "table" / name).read_bytes()
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = [
        con.execute(f"SELECT * FROM read_parquet('{tmp_path / d / 'p.parquet'}')").fetchall()
        for d in ("stream", "table")
    ]
    con.close()
    assert rows[0] == rows[1] and len(rows[0]) == streamed["rows_valid"]
