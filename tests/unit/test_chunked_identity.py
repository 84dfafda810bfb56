"""The chunked engine writes what the single-file path writes: the processed and rejected
CSV bytes, the processed Parquet rows in order, and the counts, on files cut into many small
chunks (malformed records, quoted line breaks across cuts, repeats across chunks, a BOM, CRLF
and mixed line endings, gzip, a record longer than a chunk)."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from healthpipe.dataops.chunked import validate_chunked
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, ValidationResult, validate_file
from healthpipe.errors import InputError

NOW = "2026-11-25T12:00:00+00:00"
HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note\n"
CHUNK_BYTES = 1024


def _row(i: int, user: str = "", note: str = "") -> str:
    minute = i % 60
    hour = (i // 60) % 24
    return (
        f"2025-11-{1 + i // 1440:02d}T{hour:02d}:{minute:02d}:00Z,{user or f'u{i % 7}'},"
        f"{60 + i % 50},{90 + i % 10},{i * 3},36.{i % 10},{100 + i % 60},{60 + i % 30},{note}\n"
    )


def _rows(n: int) -> list[str]:
    return [_row(i) for i in range(n)]


def _run(
    source: Path, out: Path, *, chunked: bool, profile: str = "plausible"
) -> tuple[ValidationResult, SplitPaths]:
    out.mkdir()
    split = SplitPaths(out / "p.csv", out / "p.parquet", out / "r.csv")
    limits = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=out / "tmp")
    header = read_header(source)
    rules = load_profile(profile)
    if chunked:
        result = validate_chunked(
            source,
            header,
            rules,
            split,
            now_iso=NOW,
            limits=limits,
            chunk_bytes=CHUNK_BYTES,
            sha256="0" * 64,
            workers=1,
        )
    else:
        result = validate_file(source, header, rules, split, now_iso=NOW, limits=limits)
    return result, split


def _parquet_rows(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def assert_same(tmp_path: Path, source: Path, profile: str = "plausible") -> ValidationResult:
    single, a = _run(source, tmp_path / "single", chunked=False, profile=profile)
    chunked, b = _run(source, tmp_path / "chunked", chunked=True, profile=profile)
    assert chunked == single
    assert b.processed_csv.read_bytes() == a.processed_csv.read_bytes()
    assert b.rejected_csv.read_bytes() == a.rejected_csv.read_bytes()
    assert _parquet_rows(b.processed_parquet) == _parquet_rows(a.processed_parquet)
    return single


def _write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_plain_file_in_many_chunks(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", HEADER + "".join(_rows(300)))
    result = assert_same(tmp_path, source)
    assert result.rows_input == 300


def test_repeats_and_conflicts_across_chunks(tmp_path: Path) -> None:
    rows = _rows(200)
    rows += [rows[3], rows[150].replace(",u", ",u", 1), rows[10].replace(",6", ",7", 1)]
    rows += [_row(5, user="u5"), *rows[:5]]
    result = assert_same(tmp_path, _write(tmp_path / "in.csv", HEADER + "".join(rows)))
    assert result.reasons


def test_malformed_records_and_quoted_line_breaks_across_cuts(tmp_path: Path) -> None:
    rows = _rows(250)
    for at in (0, 40, 41, 120, 249):
        rows.insert(at, "2025-11-01T00:00:00Z,u9,70\n")
    for at in range(5, 240, 13):
        rows[at] = rows[at].rstrip("\n") + '"line one\nline two, ""quoted""\n\nend"\n'
    rows.insert(60, "\n")
    rows.append("just text")
    result = assert_same(tmp_path, _write(tmp_path / "in.csv", HEADER + "".join(rows)))
    assert result.reasons["malformed_row"] >= 5


def test_bom_crlf_and_mixed_line_endings(tmp_path: Path) -> None:
    crlf = (HEADER + "".join(_rows(120))).replace("\n", "\r\n")
    assert_same(tmp_path / "crlf", _mk(tmp_path / "crlf", "\ufeff" + crlf))
    mixed = crlf + "".join(_rows(240)[120:]) + 'x,"a\r\nb",1\n'
    assert_same(tmp_path / "mixed", _mk(tmp_path / "mixed", mixed))


def _mk(folder: Path, text: str) -> Path:
    folder.mkdir()
    return _write(folder / "in.csv", text)


def test_gzip_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress((HEADER + "".join(_rows(200))).encode()))
    assert_same(tmp_path, source)


def test_record_longer_than_a_chunk(tmp_path: Path) -> None:
    rows = _rows(100)
    rows[50] = _row(50, note='"' + "x" * (5 * CHUNK_BYTES) + '"')
    rows[51] = _row(51, note="y" * (3 * CHUNK_BYTES))
    assert_same(tmp_path, _write(tmp_path / "in.csv", HEADER + "".join(rows)))


def test_header_only_file_is_refused_as_by_the_single_path(tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", HEADER + "\n\n")
    with pytest.raises(InputError) as single:
        _run(source, tmp_path / "a", chunked=False)
    with pytest.raises(InputError) as chunked:
        _run(source, tmp_path / "b", chunked=True)
    assert (chunked.value.code, chunked.value.reason) == (single.value.code, single.value.reason)
