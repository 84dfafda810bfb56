"""Files in the forms real exports take (issue 15, item 1): no valid record is rejected for its
file's form and none is lost.

Hypothesis builds files from random combinations of: LF, CRLF or mixed line endings; no,
all or some fields quoted; a UTF-8 byte-order mark; blank lines; a trailing delimiter on
every line; header names in any case, with spaces around them, in any column order, with an
extra column; no final newline; gzip; and a second file appended (its header line then is a
data record, rejected). An independent reader (Python's csv module) counts the records.

Defects it found, each with its own test below: a file mixing CRLF and LF was refused whole
(DuckDB's strict parser stops), a trailing delimiter refused the file ("header has an empty
column name"), and CR-only line endings crashed the header check with a raw csv.Error.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthpipe.constants import REQUIRED_COLUMNS
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, ValidationResult, validate_file

NOW = "2025-09-18T00:00:00+00:00"


def _values(i: int, valid: bool) -> dict[str, str]:
    return {
        "event_time": f"2025-09-17T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
        "user_id": f"user {i % 5}",  # a space: quoting must not matter
        "heart_rate": str(50 + i % 90) if valid else "fast",
        "spo2": "97.5",
        "steps": str(i * 7),
        "temp_c": "36.8",
        "systolic_bp": "121",
        "diastolic_bp": "79",
        "note": f"n{i}",
    }


def run(tmp_path: Path, data: bytes, name: str) -> tuple[ValidationResult, list[tuple[int, str]]]:
    source = tmp_path / name
    source.write_bytes(data)
    out = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    result = validate_file(
        source,
        read_header(source),
        load_profile("plausible"),
        out,
        now_iso=NOW,
        limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "duck"),
    )
    con = duckdb.connect()
    rows = con.execute(
        "SELECT source_row, event_time_text FROM read_parquet(?) ORDER BY source_row",
        [str(out.processed_parquet)],
    ).fetchall()
    con.close()
    return result, [(int(r), str(t)) for r, t in rows]


@st.composite
def export_files(draw: st.DrawFn) -> tuple[bytes, str, list[tuple[int, str]], int]:
    """(file bytes, file name, expected processed (source_row, event_time), records)."""
    columns = list(REQUIRED_COLUMNS) + (["note"] if draw(st.booleans()) else [])
    columns = draw(st.permutations(columns))
    spelled = [
        draw(st.sampled_from(["", " ", "  "]))
        + draw(st.sampled_from([c, c.upper(), c.title()]))
        + draw(st.sampled_from(["", " "]))
        for c in columns
    ]
    quoting = draw(st.sampled_from(["none", "all", "some"]))
    endings = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    trailing = draw(st.booleans())
    blank_lines = draw(st.booleans())
    parts = draw(st.lists(st.integers(1, 15), min_size=1, max_size=2))  # appended files
    invalid_every = draw(st.integers(2, 9))

    def line(cells: list[str]) -> str:
        if quoting == "all":
            cells = [f'"{c}"' for c in cells]
        elif quoting == "some":
            cells = [f'"{c}"' if draw(st.booleans()) else c for c in cells]
        ending = endings if endings != "mixed" else draw(st.sampled_from(["\n", "\r\n"]))
        blank = ending if blank_lines and draw(st.booleans()) else ""
        return ",".join(cells) + ("," if trailing else "") + ending + blank

    text, expected, record, index = "", [], 0, 0
    for n, rows in enumerate(parts):
        text += line(spelled)
        if n:
            record += 1  # the appended file's header: a data record, rejected
        for _ in range(rows):
            index += 1
            record += 1
            valid = index % invalid_every != 0
            values = _values(index, valid)
            text += line([values[c] for c in columns])
            if valid:
                expected.append((record, values["event_time"]))
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no final newline
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()
    if draw(st.booleans()):
        return gzip.compress(data), "export.csv.gz", expected, record
    return data, "export.csv", expected, record


def _records(data: bytes) -> int:
    """Data records by Python's csv module (blank lines are no records)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return sum(1 for row in rows if row) - 1


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(export_files())
def test_no_record_is_rejected_for_its_files_form_or_lost(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[bytes, str, list[tuple[int, str]], int],
) -> None:
    data, name, expected, records = case
    assert _records(data) == records  # the generator agrees with the independent reader
    result, processed = run(tmp_path_factory.mktemp("export"), data, name)
    assert result.rows_input == records
    assert processed == expected


HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def good(minute: int) -> str:
    return f"2025-09-17T12:{minute:02d}:00Z,u1,70,98,100,36.8,120,80"


def test_mixed_line_endings_are_read_not_refused(tmp_path: Path) -> None:
    """DuckDB's strict parser stopped ("state machine reached an invalid state"): exit 2."""
    data = f"{HEADER}\r\n{good(0)}\n{good(1)}\r\n{good(2)}\n".encode()
    result, processed = run(tmp_path, data, "mixed.csv")
    assert (result.rows_input, result.rows_valid) == (3, 3)
    assert [row for row, _ in processed] == [1, 2, 3]


def test_mixed_line_endings_keep_malformed_records_in_their_place(tmp_path: Path) -> None:
    data = f'{HEADER}\n{good(0)}\r\n2025-09-17T12:01:00Z,"bad "quote,70\n{good(2)}\r\n'.encode()
    result, processed = run(tmp_path, gzip.compress(data), "mixed.csv.gz")
    assert (result.rows_input, result.rows_valid) == (3, 2)
    assert result.reasons == {"malformed_row": 1}
    assert [row for row, _ in processed] == [1, 3]


def test_a_trailing_delimiter_on_every_line_is_an_unnamed_column(tmp_path: Path) -> None:
    """The file was refused: "header has an empty column name"."""
    data = f"{HEADER},\n{good(0)},\n{good(1)},kept\n".encode()
    result, _ = run(tmp_path, data, "trailing.csv")
    assert (result.rows_input, result.rows_valid) == (2, 2)
    assert result.columns[-1] == "unnamed_9"
    with (tmp_path / "p.csv").open(newline="") as handle:
        assert [r["unnamed_9"] for r in csv.DictReader(handle)] == ["", "kept"]


def test_cr_only_line_endings_are_read(tmp_path: Path) -> None:
    """The header check raised a raw csv.Error (an internal error, exit 1)."""
    data = f"{HEADER}\r{good(0)}\r{good(1)}\r".encode()
    result, _ = run(tmp_path, data, "cr.csv")
    assert (result.rows_input, result.rows_valid) == (2, 2)


def test_quoted_fields_with_mixed_line_endings_lose_no_record(tmp_path: Path) -> None:
    """With quotes DuckDB raised nothing: three records were read as one malformed one."""
    quoted = [",".join(f'"{c}"' for c in line.split(",")) for line in (HEADER, good(0), good(1))]
    data = f"{quoted[0]}\r\n{quoted[1]}\n{quoted[2]}\n".encode()
    result, processed = run(tmp_path, data, "quoted.csv")
    assert (result.rows_input, result.rows_valid) == (2, 2)
    assert [row for row, _ in processed] == [1, 2]
