"""`source_row` is the 1-based data-record index, header excluded (docs/architecture.md):
a blank line is no record, wherever it stands.

DuckDB skips blank lines but reports a malformed record by its line, blank lines counted.
The malformed record was numbered too high and every parsed record after it too low (the
malformed count before it was found from the line numbers): after one blank line, a
malformed third record was numbered 4 and the rejected fourth record 2. The expected
numbers here come from an independent reader (Python's csv module: an empty row is a blank
line), never from the code under test.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_export_variations import run

from healthpipe.dataops.record_bounds import blank_lines
from healthpipe.dataops.validation.staged import MAX_MALFORMED_RUNS

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def _time(i: int) -> str:
    return f"2025-09-17T{i // 60 % 24:02d}:{i % 60:02d}:00Z"


def valid(i: int) -> str:
    return f"{_time(i)},u1,70,98,100,36.8,120,80"


def invalid(i: int) -> str:
    return f"{_time(i)},u1,999,98,100,36.8,120,80"  # heart rate out of range


def malformed(i: int) -> str:
    return f"{_time(i)},u1,70,98,100,36.8,120,80,extra"  # one field too many


KINDS = {"valid": valid, "invalid": invalid, "malformed": malformed}


def expected_rows(data: bytes) -> dict[str, int]:
    """Each record's event time -> its data-record number, by Python's csv module (an empty
    row is a blank line, not a record)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    rows = [r for r in csv.reader(io.StringIO(data.decode(), newline="")) if r][1:]
    return {row[0]: number for number, row in enumerate(rows, start=1)}


def split(tmp_path: Path, data: bytes, name: str = "vitals.csv") -> dict[str, int]:
    """Validate `data` (as the export-variations test does); each record's event time ->
    the source_row the outputs give it (the processed Parquet's, or the rejected CSV's,
    whose malformed rows hold the raw line)."""
    result, processed = run(tmp_path, data, name)
    found = {time: row for row, time in processed}
    with (tmp_path / "r.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            time = row["event_time"] or row["raw_line"].split(",")[0]
            found[time] = int(row["source_row"])
    assert result.rows_input == len(found)
    return found


def _file(pieces: list[str], ending: str = "\n") -> bytes:
    return (ending.join([HEADER, *pieces]) + ending).encode()


def test_a_blank_line_before_a_malformed_record_numbers_both_as_records(tmp_path: Path) -> None:
    # GIVEN a valid record, a blank line, a malformed record, then an invalid one
    data = _file([valid(0), "", malformed(1), invalid(2)])
    # THEN the malformed record is the 2nd (it was numbered 3) and the invalid one the 3rd
    # (it was numbered 2, before the malformed record)
    assert split(tmp_path, data) == {_time(0): 1, _time(1): 2, _time(2): 3}
    assert expected_rows(data) == {_time(0): 1, _time(1): 2, _time(2): 3}


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_blank_lines_anywhere_are_no_records(tmp_path: Path, ending: str) -> None:
    # GIVEN blank lines right after the header, in runs, and between malformed records
    pieces = ["", valid(0), "", "", malformed(1), "", invalid(2), malformed(3), "", "", valid(4)]
    data = _file(pieces, ending)
    assert split(tmp_path, data) == expected_rows(data)


def test_gzip_and_mixed_line_endings_number_as_the_plain_file(tmp_path: Path) -> None:
    # GIVEN the file gzipped, with CRLF and LF mixed (read from its LF copy)
    text = f"{HEADER}\r\n\n{valid(0)}\n\r\n{malformed(1)}\r\n{invalid(2)}\n\n{malformed(3)}\n"
    data = gzip.compress(text.encode())
    assert split(tmp_path, data, "mixed.csv.gz") == expected_rows(data)


def test_the_table_path_numbers_blank_lines_alike(tmp_path: Path) -> None:
    # GIVEN more runs of malformed records than the staged path numbers (the table path),
    # each after a blank line
    pieces: list[str] = []
    for i in range(MAX_MALFORMED_RUNS + 2):
        pieces += ["", malformed(2 * i), valid(2 * i + 1)]
    data = _file(pieces)
    assert split(tmp_path, data) == expected_rows(data)


def test_blank_lines_are_found_outside_quotes_only(tmp_path: Path) -> None:
    # GIVEN a quoted field holding an empty line, then blank lines (LF and CRLF)
    path = tmp_path / "q.csv"
    path.write_bytes(f'{HEADER},note\n{valid(0)},"a\n\nb"\n\n{valid(1)},x\r\n\r\n'.encode())
    # THEN only the two real blank lines count, by their line among the records
    assert blank_lines(path, gzipped=False) == [2, 4]


PIECE = st.sampled_from(["valid", "invalid", "malformed", "blank"])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(kinds=st.lists(PIECE, min_size=1, max_size=30), ending=st.sampled_from(["\n", "\r\n"]))
def test_random_files_number_every_record_as_an_independent_reader(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str], ending: str
) -> None:
    pieces = ["" if kind == "blank" else KINDS[kind](i) for i, kind in enumerate(kinds)]
    if all(kind == "blank" for kind in kinds):
        pieces.append(valid(len(kinds)))
    data = _file(pieces, ending)
    assert split(tmp_path_factory.mktemp("blank"), data) == expected_rows(data)
