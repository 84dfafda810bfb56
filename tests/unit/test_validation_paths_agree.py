"""The staged path (files without malformed records) and the table path write the same
bytes and count the same: checked by forcing the table path on the same file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.dataops.validation import file as validate_module
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


# Malformed records: too many cells, too few, a stray quote; first, consecutive, last.
MALFORMED = {
    0: "2026-10-31T23:59:00Z,u9,70,98,100,36.6,120,80,surplus",
    500: "2026-11-01T00:00:00Z,u9,70",
    501: '2026-11-01T00:00:00Z,"u9"x,70,98,100,36.6,120,80',
    1700: "just text",
}


def _with_malformed(source: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    for at, text in sorted(MALFORMED.items()):
        rows.insert(at, text)
    rows.append("2026-11-02T00:00:00Z,u9,70,98")
    source.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("profile", "malformed"), [("plausible", False), ("seed", False), ("plausible", True)]
)
def test_streaming_and_table_paths_agree(
    tmp_path: Path, profile: str, malformed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = generate_csv(
        SyntheticSpec(rows=3000, users=7, seed=3, duplicate_rate=0.02), tmp_path / "in.csv"
    )
    with source.open("a", encoding="utf-8") as handle:
        handle.write(TRICKY_ROWS)
    if malformed:
        _with_malformed(source)
    table = validate_module.validate_table
    monkeypatch.setattr(validate_module, "validate_table", lambda *a, **k: 1 / 0)
    streamed = _run(source, tmp_path / "stream", profile)  # the staged path alone
    monkeypatch.setattr(validate_module, "validate_table", table)
    assert streamed["reasons"].get("malformed_row", 0) == (5 if malformed else 0)  # type: ignore[attr-defined]
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


def test_many_runs_of_malformed_records_take_the_table_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from healthpipe.dataops.validation import staged as validate_stream

    source = generate_csv(SyntheticSpec(rows=3000, users=7, seed=3), tmp_path / "in.csv")
    _with_malformed(source)
    staged = _run(source, tmp_path / "staged", "plausible")
    monkeypatch.setattr(validate_stream, "MAX_MALFORMED_RUNS", 2)  # the file has 4 runs
    calls: list[int] = []
    table = validate_module.validate_table
    monkeypatch.setattr(
        validate_module, "validate_table", lambda *a, **k: calls.append(1) or table(*a, **k)
    )
    tabled = _run(source, tmp_path / "table", "plausible")
    assert calls == [1]
    assert json.dumps(staged, sort_keys=True) == json.dumps(tabled, sort_keys=True)
    for name in ("p.csv", "r.csv"):
        assert (tmp_path / "staged" / name).read_bytes() == (tmp_path / "table" / name).read_bytes()
