"""The chunked engine writes what the single-file path writes: the processed and rejected
CSV bytes, the processed Parquet rows in order, and the counts, on files cut into many small
chunks (malformed records, quoted line breaks across cuts, repeats across chunks, a BOM, CRLF
and mixed line endings, gzip, a record longer than a chunk)."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from healthpipe.dataops.chunked import validate_chunked
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, ValidationResult, validate_file
from healthpipe.dataops.validation.types import MAX_RECORD_BYTES
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
    source: Path,
    out: Path,
    *,
    chunked: bool,
    profile: str = "plausible",
    chunk_bytes: int = CHUNK_BYTES,
    workers: int = 1,
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
            chunk_bytes=chunk_bytes,
            sha256="0" * 64,
            workers=workers,
        )
    else:
        result = validate_file(source, header, rules, split, now_iso=NOW, limits=limits)
    return result, split


def _parquet_rows(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def assert_same(tmp_path: Path, source: Path, profile: str = "plausible") -> ValidationResult:
    single, a = _run(source, tmp_path / "single", chunked=False, profile=profile)
    _assert_same_outputs(single, a, source, tmp_path, profile)
    return single


def _assert_same_outputs(
    single: ValidationResult,
    a: SplitPaths,
    source: Path,
    tmp_path: Path,
    profile: str,
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    chunked, b = _run(
        source, tmp_path / "chunked", chunked=True, profile=profile, chunk_bytes=chunk_bytes
    )
    assert chunked == single
    assert list(chunked.reasons.items()) == list(single.reasons.items())  # the manifest's order
    assert b.processed_csv.read_bytes() == a.processed_csv.read_bytes()
    assert b.rejected_csv.read_bytes() == a.rejected_csv.read_bytes()
    assert _parquet_rows(b.processed_parquet) == _parquet_rows(a.processed_parquet)


def _write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("profile", ["plausible", "seed"])
def test_repeats_and_conflicts_across_chunks(tmp_path: Path, profile: str) -> None:
    rows = _rows(150)
    rows += [rows[3], rows[120], rows[10].replace(",6", ",7", 1)]  # a repeat, a conflict
    rows += [_row(5, user="u5"), *rows[:5]]
    source = _write(tmp_path / "in.csv", HEADER + "".join(rows))
    result = assert_same(tmp_path, source, profile)
    assert result.reasons["duplicate_reading"] >= 7


def test_malformed_records_and_quoted_line_breaks_across_cuts(tmp_path: Path) -> None:
    rows = _rows(150)
    for at in (0, 40, 41, 120, 149):
        rows.insert(at, "2025-11-01T00:00:00Z,u9,70\n")
    for at in range(5, 150, 13):
        rows[at] = rows[at].rstrip("\n") + '"line one\nline two, ""quoted""\n\nend"\n'
    rows[71] = rows[71].rstrip("\n") + ' "spaced\nquote"\n'  # DuckDB skips the space
    rows.insert(60, "\n")
    rows.append("just text")
    result = assert_same(tmp_path, _write(tmp_path / "in.csv", HEADER + "".join(rows)))
    assert result.reasons["malformed_row"] >= 5


def test_stray_quotes_take_the_single_path(tmp_path: Path) -> None:
    # a quote inside an unquoted field, text after a closing quote: the plan flags them
    # (`ChunkPlan.irregular_quotes`) and the executor splits the file in one pass
    rows = _rows(60)
    rows[30] = rows[30].replace(",u", ',u"', 1)
    rows[31] = rows[31].replace(",u", ',"u', 1).replace(",", '"x,', 2)
    for at in range(32, 60, 5):
        rows[at] = rows[at].rstrip("\n") + '"line\nbreak"\n'
    assert_same(tmp_path, _write(tmp_path / "in.csv", HEADER + "".join(rows)))


def test_bom_crlf_and_mixed_line_endings(tmp_path: Path) -> None:
    crlf = (HEADER + "".join(_rows(80))).replace("\n", "\r\n")
    assert_same(tmp_path / "crlf", _mk(tmp_path / "crlf", "\ufeff" + crlf))
    mixed = crlf + "".join(_rows(160)[80:]) + 'x,"a\r\nb",1\n'
    assert_same(tmp_path / "mixed", _mk(tmp_path / "mixed", mixed))


def _mk(folder: Path, text: str) -> Path:
    folder.mkdir()
    return _write(folder / "in.csv", text)


def test_two_worker_processes_write_what_the_single_path_writes(tmp_path: Path) -> None:
    rows = _rows(100)
    rows += [rows[3], rows[90].replace(",6", ",7", 1), "2025-11-01T00:00:00Z,u9,70\n"]
    source = _write(tmp_path / "in.csv", HEADER + "".join(rows))
    single, a = _run(source, tmp_path / "single", chunked=False)
    pooled, b = _run(source, tmp_path / "pooled", chunked=True, workers=2)
    assert pooled == single
    assert list(pooled.reasons.items()) == list(single.reasons.items())
    for x, y in zip(a.__dict__.values(), b.__dict__.values(), strict=True):
        assert y.read_bytes() == x.read_bytes() or x.suffix == ".parquet"
    assert _parquet_rows(b.processed_parquet) == _parquet_rows(a.processed_parquet)


def test_gzip_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress((HEADER + "".join(_rows(100))).encode()))
    assert_same(tmp_path, source)


def test_record_longer_than_a_chunk(tmp_path: Path) -> None:
    rows = _rows(100)
    rows[50] = _row(50, note='"' + "x" * (5 * CHUNK_BYTES) + '"')
    rows[51] = _row(51, note="y" * (3 * CHUNK_BYTES))
    assert_same(tmp_path, _write(tmp_path / "in.csv", HEADER + "".join(rows)))


UNUSABLE = {
    "header_only": lambda: (HEADER + "\n\n").encode(),
    "not_utf8_late": lambda: (
        (HEADER + "".join(_rows(60))).encode() + b"2025-11-01T00:00:00Z,u\xff,70\n"
    ),
    "record_too_long": lambda: (
        (HEADER + "".join(_rows(60))).encode() + _row(61, note="n" * MAX_RECORD_BYTES).encode()
    ),
}


@pytest.mark.parametrize("kind", list(UNUSABLE))
def test_an_unusable_file_is_refused_as_by_the_single_path(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(UNUSABLE[kind]())
    with pytest.raises(InputError) as single:
        _run(source, tmp_path / "a", chunked=False)
    with pytest.raises(InputError) as chunked:
        _run(source, tmp_path / "b", chunked=True)
    assert (chunked.value.code, chunked.value.reason) == (single.value.code, single.value.reason)


# Pieces of a file: valid rows on few users and minutes (so repeats and conflicts occur),
# malformed records, quoted notes with line breaks and quotes (after a space too), blank lines.
PIECES = st.one_of(
    st.builds(
        lambda u, m, v: f"2025-11-01T00:{m:02d}:00Z,u{u},{v},98,5,36.6,120,80,\n",
        st.integers(0, 2),
        st.integers(0, 5),
        st.integers(60, 62),
    ),
    st.just("2025-11-01T00:00:00Z,u1,70\n"),
    st.builds(
        lambda m: f'2025-11-01T01:{m:02d}:00Z,u3,70,98,5,36.6,120,80,"a\n, ""b""\n"\n',
        st.integers(0, 5),
    ),
    st.builds(
        lambda m: f'2025-11-01T02:{m:02d}:00Z,u4,70,98,5,36.6,120,80, "x\n"\n', st.integers(0, 5)
    ),
    st.just("\n"),  # no record: a malformed record after it numbered too high until session 14
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],  # no shrinking: minutes of DuckDB runs
)
@given(pieces=st.lists(PIECES, min_size=1, max_size=25), crlf=st.booleans())
@example(  # blank lines, then a malformed record and a repeat (once numbered out of order)
    pieces=[
        *["\n"] * 5,
        *[f"2025-11-01T00:0{m}:00Z,u1,70,98,5,36.6,120,80,\n" for m in range(6)],
        "2025-11-01T00:00:00Z,u1,70\n",
        "2025-11-01T00:00:00Z,u1,70,98,5,36.6,120,80,\n",
    ],
    crlf=False,
)
def test_small_random_files_split_as_by_the_single_path(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[str], crlf: bool
) -> None:
    text = HEADER + "".join(pieces)
    if crlf:
        text = text.replace("\n", "\r\n")
    folder = tmp_path_factory.mktemp("random")
    source = _write(folder / "in.csv", text)
    try:
        single, a = _run(source, folder / "single", chunked=False)
    except InputError as exc:
        with pytest.raises(InputError) as chunked:
            _run(source, folder / "chunked", chunked=True, chunk_bytes=300)
        assert (chunked.value.code, chunked.value.reason) == (exc.code, exc.reason)
        return
    _assert_same_outputs(single, a, source, folder, "plausible", chunk_bytes=300)
