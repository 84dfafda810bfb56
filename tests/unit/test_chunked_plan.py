"""The plan: one pass that cuts a file at record starts only (never
inside a quoted field), each cut carrying the records before it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthpipe.dataops.chunked.assemble import merge_reasons
from healthpipe.dataops.chunked.local import chunk_size
from healthpipe.dataops.chunked.plan import plan_file, write_chunk_file
from healthpipe.dataops.record_bounds import RecordBounds, blank_lines
from healthpipe.domain.documents.chunk_plan import ChunkPlan, ChunkSplit

HEADER = b"event_time,user_id,note\n"
SHA = "ab" * 32  # the stored file's, from the object store


def _records(plan: ChunkPlan, data: bytes) -> list[bytes]:
    return [data[c.start : c.end] for c in plan.chunks]


def test_cuts_fall_at_record_starts_outside_quotes(tmp_path: Path) -> None:
    # GIVEN records whose quoted notes hold line breaks around every 64-byte mark
    rows = [
        b't%d,u1,"a\nb ""q"" \n\nc"\n' % i if i % 2 else b"t%d,u2,plain\n" % i for i in range(60)
    ]
    data = HEADER + b"".join(rows)
    source = tmp_path / "in.csv"
    source.write_bytes(data)
    # WHEN it is planned in 64-byte chunks
    planned = plan_file(source, tmp_path, chunk_bytes=64, sha256=SHA)
    plan = planned.plan
    # THEN every chunk is whole records, in order, covering the data after the header
    assert planned.data == source and not plan.prepared
    assert (plan.sha256, plan.size) == (SHA, len(data))
    assert plan.header_bytes == len(HEADER)
    assert len(plan.chunks) > 10
    assert b"".join(_records(plan, data)) == b"".join(rows)
    row_at = {sum(len(r) for r in rows[:i]) + len(HEADER): i for i in range(len(rows))}
    for chunk in plan.chunks:
        # line breaks inside quotes are not record starts: one record per row
        assert chunk.lines_before == row_at[chunk.start]
        assert chunk.end - chunk.start >= 64 or chunk.index == len(plan.chunks) - 1


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_each_cut_carries_the_blank_lines_before_it(tmp_path: Path, ending: bytes) -> None:
    # GIVEN records and blank lines (one right after the header), and quoted notes holding
    # empty lines, which are no blank lines
    lines = [b""] + [
        b""
        if i % 3 == 0
        else b't%d,u1,"a%s%sb"' % (i, ending, ending)
        if i % 3 == 1
        else b"t%d,u1,x" % i
        for i in range(1, 40)
    ]
    data = HEADER.replace(b"\n", ending) + b"".join(line + ending for line in lines)
    source = tmp_path / "in.csv"
    source.write_bytes(data)
    # WHEN it is planned in 32-byte chunks
    plan = plan_file(source, tmp_path, chunk_bytes=32, sha256=SHA).plan
    # THEN each chunk counts the blank lines before it among the lines before it
    starts = [len(HEADER.replace(b"\n", ending))]
    for line in lines:
        starts.append(starts[-1] + len(line) + len(ending))
    assert len(plan.chunks) > 5
    for chunk in plan.chunks:
        before = lines[: starts.index(chunk.start)]
        assert chunk.lines_before == len(before)
        assert chunk.blank_lines_before == before.count(b"")
    # AND the validation's scan numbers the same blank lines
    assert blank_lines(source, gzipped=False) == [i + 1 for i, line in enumerate(lines) if not line]


def test_a_record_longer_than_a_chunk_makes_its_chunk_longer(tmp_path: Path) -> None:
    long = b't1,u1,"' + b"x\n" * 200 + b'"\n'
    source = tmp_path / "in.csv"
    source.write_bytes(HEADER + b"t0,u1,a\n" + long + b"t2,u1,b")
    plan = plan_file(source, tmp_path, chunk_bytes=16, sha256=SHA).plan
    assert [c.end - c.start for c in plan.chunks] == [8 + len(long), 7]
    assert [c.lines_before for c in plan.chunks] == [0, 2]


def test_gzip_is_planned_over_its_uncompressed_copy(tmp_path: Path) -> None:
    data = HEADER + b"".join(b"t%d,u1,a\n" % i for i in range(100))
    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress(data))
    planned = plan_file(source, tmp_path, chunk_bytes=100, sha256=SHA)
    assert planned.plan.size == source.stat().st_size
    assert planned.plan.gzipped and planned.plan.prepared
    assert planned.data.read_bytes() == data
    chunk = planned.plan.chunks[1]
    target = write_chunk_file(planned.data, planned.plan, chunk, tmp_path / "c.csv")
    assert target.read_bytes() == HEADER + data[chunk.start : chunk.end]


def test_mixed_line_endings_are_planned_over_the_lf_copy(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(HEADER + b"t0,u1,a\r\nt1,u1,b\n")
    planned = plan_file(source, tmp_path, chunk_bytes=1, sha256=SHA)
    assert planned.plan.mixed_line_endings and planned.plan.prepared
    assert planned.data.read_bytes() == HEADER + b"t0,u1,a\nt1,u1,b\n"
    assert [(c.start, c.lines_before) for c in planned.plan.chunks] == [(24, 0), (32, 1)]


def test_a_header_without_records_plans_no_chunk(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(HEADER)
    assert plan_file(source, tmp_path, chunk_bytes=1, sha256=SHA).plan.chunks == []


def test_chunks_are_cut_small_enough_for_every_worker_but_not_tiny() -> None:
    mb = 1024 * 1024
    assert chunk_size(1000 * mb, 128 * mb, 2) == 128 * mb
    assert chunk_size(100 * mb, 128 * mb, 2) == 25 * mb
    assert chunk_size(10 * mb, 128 * mb, 4) == 4 * mb  # MIN_CHUNK_BYTES
    assert chunk_size(10 * mb, 300, 4) == 300  # the largest asked for wins


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(alphabet='a ,"\n\r', max_size=80),
    block=st.integers(1, 9),
    chunk_bytes=st.integers(1, 12),
)
def test_cuts_do_not_depend_on_where_blocks_end(body: str, block: int, chunk_bytes: int) -> None:
    # GIVEN any text of cells, spaces, commas, quotes (escaped pairs too) and line breaks
    data = HEADER + body.encode()
    whole = RecordBounds(chunk_bytes, blank_numbers=[])
    whole.feed(data, 0)
    # WHEN it is read in blocks of `block` bytes
    pieces = RecordBounds(chunk_bytes, blank_numbers=[])
    for at in range(0, len(data), block):
        pieces.feed(data[at : at + block], at)
    # THEN the cuts, their record and blank-line counts are those of one read
    assert pieces.chunks(len(data)) == whole.chunks(len(data))
    assert (pieces.lines, pieces.blank_numbers, pieces.inside, pieces.irregular) == (
        whole.lines,
        whole.blank_numbers,
        whole.inside,
        whole.irregular,
    )
    assert pieces.blanks == len(pieces.blank_numbers or [])


@pytest.mark.parametrize(
    ("row", "irregular"),
    [
        (b't1,u1,"a ""b"", c"\n', False),
        (b't1, "u1",x\r\n', False),
        (b't1,u"1,x\n', True),  # a quote inside an unquoted field
        (b't1,"u1"x,x\n', True),  # text after a closing quote
        (b't1,"a" "b",x\n', True),
    ],
)
def test_quotes_the_reader_may_read_otherwise_are_flagged(
    tmp_path: Path, row: bytes, irregular: bool
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(HEADER + row + b"t2,u2,a\n")
    assert plan_file(source, tmp_path, chunk_bytes=1, sha256=SHA).plan.irregular_quotes == irregular


def test_reasons_add_up_in_the_single_paths_order() -> None:
    def split(index: int, reasons: dict[str, int]) -> ChunkSplit:
        return ChunkSplit(
            index=index,
            rows_input=0,
            rows_valid=0,
            rows_rejected=0,
            reasons=reasons,
            processed_csv_header_bytes=0,
            rejected_csv_header_bytes=0,
        )

    merged = merge_reasons(
        [
            split(0, {"malformed_row": 1, "invalid_spo2": 2}),
            split(1, {"duplicate_reading": 3, "invalid_hr": 1, "invalid_spo2": 1}),
        ]
    )
    # most frequent first, ties by name, malformed records last (validation.common.summarise)
    assert list(merged.items()) == [
        ("duplicate_reading", 3),
        ("invalid_spo2", 3),
        ("invalid_hr", 1),
        ("malformed_row", 1),
    ]
