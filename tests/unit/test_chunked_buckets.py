"""Reduce over hash buckets (`dataops.chunked.buckets`, the AWS executor's): the repeats and
their conflicts are those the single path's window (`validation.staged._repeats`) finds over
every chunk's staging file at once (`find_repeats` below, the engine's reduce before hash
buckets), for any number of buckets."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from healthpipe.dataops.chunked.buckets import bucket_repeats, chunk_repeats, write_key_buckets
from healthpipe.dataops.chunked.chunk_validate import stage_chunk
from healthpipe.dataops.chunked.plan import plan_file, write_chunk_file
from healthpipe.dataops.chunked.repeats import rows_before
from healthpipe.dataops.chunked.staging import create_staged_view
from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header, read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation.common import ROW
from healthpipe.dataops.validation.staged import (
    STAGED,
    STAGED_INSTANT,
    STAGED_INSTANT_NAME,
    _repeats,
)
from healthpipe.domain.documents.chunk_plan import StagedChunk
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import quote_literal

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"


def find_repeats(
    header: Header,
    profile: RuleProfile,
    staged: list[tuple[StagedChunk, Path]],
    repeats: Path,
    *,
    limits: EngineLimits,
) -> list[int]:
    """The reference: the single path's window over every chunk's staging file at once.

    Inputs: every chunk's map result and staging file, in chunk order.
    Output: `repeats` (Parquet: the parsed-record number, 1-based in the whole file, of
    every repeat, and whether it conflicts with the first reading); returns the parsed
    records before each chunk (the `rows_before` of `split_chunk`)."""
    ordered = sorted(staged, key=lambda s: s[0].index)
    before = rows_before([s for s, _ in ordered])
    con = connect(limits)
    try:
        con.execute("SET preserve_insertion_order = true")
        create_staged_view(con, header, [(p, b) for (_, p), b in zip(ordered, before, strict=True)])
        _repeats(con, profile, sum(s.rows for s, _ in ordered))
        con.execute(f"COPY repeats TO {quote_literal(str(repeats))} (FORMAT parquet)")
    finally:
        con.close()
    return before


def rows(path: Path) -> list[tuple[object, ...]]:
    return sorted(duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall())


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[StagedChunk, Path]]]:
    """A file in 400-byte chunks: readings repeated within and across chunks, some with
    other values (conflicts), a blank user (never a repeat), three users."""
    folder = tmp_path_factory.mktemp("buckets")
    lines = [
        f"2025-11-01T00:{m % 20:02d}:00Z,u{m % 3},{70 + m % 2 * (m // 20)},98,5,36.6,120,80\n"
        for m in range(90)
    ]
    lines[40] = "2025-11-01T00:00:00Z,,70,98,5,36.6,120,80\n"
    source = folder / "in.csv"
    source.write_text(HEADER + "".join(lines))
    plan = plan_file(source, folder, chunk_bytes=400, sha256="x").plan
    header, profile = read_header(source), load_profile("plausible")
    limits = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=folder / "tmp")
    pairs = []
    for chunk in plan.chunks:
        part = folder / f"c{chunk.index}"
        part.mkdir()
        csv = write_chunk_file(source, plan, chunk, part / "chunk.csv")
        done = stage_chunk(
            csv,
            header,
            profile,
            chunk,
            part / "staged.parquet",
            part / "malformed.parquet",
            now_iso="2026-01-02T00:00:00+00:00",
            limits=limits,
        )
        pairs.append((done, part / "staged.parquet"))
    assert len(pairs) >= 5
    return folder, pairs


@pytest.mark.parametrize("count", [3])
def test_repeats_by_bucket_are_the_repeats_of_the_whole_file(
    staged: tuple[Path, list[tuple[StagedChunk, Path]]], count: int
) -> None:
    folder, pairs = staged
    header = read_header(folder / "in.csv")
    profile = load_profile("plausible")
    limits = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=folder / "tmp")
    # GIVEN the repeats of every staging file read at once (the local executor's reduce)
    whole = folder / f"whole-{count}.parquet"
    before = find_repeats(header, profile, pairs, whole, limits=limits)
    # WHEN each chunk writes its buckets, each bucket finds its repeats, each chunk takes its own
    keys = {
        (done.index, b): folder / f"keys-{count}-{done.index}-{b}.parquet"
        for done, _ in pairs
        for b in range(count)
    }
    for done, path in pairs:
        index = done.index
        targets = [keys[index, b] for b in range(count)]
        write_key_buckets(header, profile, path, index, targets, limits=limits)
    found = 0
    per_bucket = []
    for b in range(count):
        out = folder / f"bucket-{count}-{b}.parquet"
        found += bucket_repeats(
            profile, [keys[i, b] for i in range(len(pairs))], out, limits=limits
        )
        per_bucket.append(out)
    by_chunk = []
    for index, offset in enumerate(before):
        out = folder / f"chunk-{count}-{index}.parquet"
        chunk_repeats(per_bucket, index, offset, out, limits=limits)
        by_chunk += rows(out)
    # THEN they are the same rows, conflicts and all
    expected = rows(whole)
    assert sorted(by_chunk) == expected and found == len(expected)
    assert any(conflict for _, conflict in expected) and not all(c for _, c in expected)


def test_every_bucket_file_is_written_empty_ones_too(
    staged: tuple[Path, list[tuple[StagedChunk, Path]]],
) -> None:
    # GIVEN one chunk of a few records, in more buckets than it has identities
    folder, pairs = staged
    done, path = pairs[0]
    targets = [folder / f"few-{b}.parquet" for b in range(32)]
    limits = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=folder / "tmp")
    profile = load_profile("plausible")
    # WHEN its buckets are written
    write_key_buckets(
        read_header(folder / "in.csv"), profile, path, done.index, targets, limits=limits
    )
    # THEN every bucket has its file, with the same columns, and together they hold the chunk
    columns = {tuple(duckdb.sql(f"DESCRIBE SELECT * FROM '{t}'").fetchall()) for t in targets}
    sizes = [len(rows(t)) for t in targets]
    assert len(columns) == 1 and 0 in sizes and sum(sizes) == done.rows
    assert not (folder / "hp_buckets").exists()


def test_a_staging_file_from_before_the_parsed_time_column_reads_the_same(
    staged: tuple[Path, list[tuple[StagedChunk, Path]]], tmp_path: Path
) -> None:
    # GIVEN a chunk staged by the code before the staging file kept the parsed time (mapped
    # before a deploy, its execution still running): the same file without that column
    folder, pairs = staged
    header = read_header(folder / "in.csv")
    (first, current), (second, other) = pairs[0], pairs[1]
    older = tmp_path / "older.parquet"
    duckdb.sql(
        f"COPY (SELECT * EXCLUDE ({STAGED_INSTANT}) FROM read_parquet('{other}')) TO '{older}' "
        "(FORMAT parquet)"
    )
    described = duckdb.execute(f"DESCRIBE SELECT * FROM '{older}'").fetchall()
    assert STAGED_INSTANT_NAME not in [column for column, *_ in described]

    def view(parts: list[tuple[Path, int]]) -> list[tuple[object, ...]]:
        con = connect(EngineLimits(threads=1))
        try:
            create_staged_view(con, header, parts)
            return con.execute(f"SELECT * FROM {STAGED} ORDER BY {ROW}").fetchall()
        finally:
            con.close()

    # WHEN the view reads it beside a current one, THEN every row, its time included, is
    # the one both current files give
    both = view([(current, 0), (other, first.rows)])
    assert view([(current, 0), (older, first.rows)]) == both
    assert len(both) == first.rows + second.rows
