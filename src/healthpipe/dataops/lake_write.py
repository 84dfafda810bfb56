"""Write one processed file's valid readings into the lake's partitions (docs/lake.md).

`lake/readings/pb=<NN>/dt=<YYYY-MM-DD>/<dataset_id>.parquet`: `pb` the participant bucket
(two digits, `identity.participant_bucket`, given here as a small map from each of the file's
`user_id`s to its bucket, so domain keeps the one definition), `dt` the reading day (UTC date
of `event_time`). One DuckDB `COPY … PARTITION_BY (pb, dt)` into a local folder; the caller
uploads each file under its key. The partition values are in the path, not in the file (as
hive partitioning and the Glue table's projected partitions expect); the columns are the
processed Parquet's, in its order.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import duckdb

from healthpipe.dataops.engine import EngineLimits, connect, source_literal
from healthpipe.dataops.runs import weighted_runs
from healthpipe.domain.validation_sql import quote_literal

K = TypeVar("K")
J = TypeVar("J")

MIN_MEMORY_MB = 64
# rows per COPY: a group's partition buffers stay in memory (2M rows, 8 groups: 152 MB RSS)
ROWS_PER_COPY = 250_000
MICROS_PER_DAY = 86_400_000_000
READ_COST_RATIO = 8  # a row written costs about as much as eight rows read
# A cut of at most this many participants names them (`r.user_id IN (…)`), so that DuckDB
# skips the row groups whose `user_id` statistics hold none of them (a file in participant
# order); a larger one relies on the join.
MAX_NAMED_USERS = 2000
LAKE_MEMORY_SHARE = 5  # eighths of the stage's DuckDB memory the lake's connections share


def utc_day(column: str) -> str:
    """SQL: the UTC date (DATE) of the TIMESTAMPTZ `column`, from its epoch microseconds
    (floor division, so before 1970 too). The same day as `CAST(column AS DATE)` under
    `TimeZone = 'UTC'`, without ICU's per-row time-zone conversion (2M rows: 0.04 s CPU
    against 0.26 s; strftime 0.55 s)."""
    us, d = f"epoch_us({column})", MICROS_PER_DAY
    days = f"({us} - (({us} % {d}) + {d}) % {d}) // {d}"
    return f"(DATE '1970-01-01' + CAST({days} AS INTEGER))"


@dataclass(frozen=True)
class LakePart:
    """One written partition file: its bucket (0-63), reading day and local path."""

    bucket: int
    day: str
    path: Path


@dataclass(frozen=True)
class LakeCut:
    """The rows of one COPY: participant buckets `first`..`last` and, when `days` is set,
    only their reading days `days[0]`..`days[1]` (a bucket of more than `ROWS_PER_COPY` rows
    is cut by consecutive days). `index` names its folder (`g<index>`)."""

    index: int
    first: int
    last: int
    days: tuple[date, date] | None = None

    def where(self) -> str:
        """SQL: this cut's rows of the processed file (`r`) joined to its buckets (`b`)."""
        sql = f"b.bucket BETWEEN {int(self.first)} AND {int(self.last)}"
        if self.days is not None:  # whole UTC days: the day of `utc_day`, as a range
            start, end = self.days[0], self.days[1] + timedelta(days=1)
            sql += (
                f" AND r.event_time >= TIMESTAMPTZ '{start.isoformat()} 00:00:00+00'"
                f" AND r.event_time < TIMESTAMPTZ '{end.isoformat()} 00:00:00+00'"
            )
        return sql


def write_lake_parts(
    processed: Path, out_dir: Path, bucket_of: Callable[[str], int], limits: EngineLimits
) -> list[LakePart]:
    """Split the processed Parquet `processed` by participant bucket and reading day into
    `out_dir` (which must not exist yet): one Parquet file per partition present. Rows with
    no `user_id` or `event_time` (validation keeps none) have no partition and are left out.

    The partitions are cut into COPYs of about `ROWS_PER_COPY` rows, by buckets (`_cuts`:
    consecutive buckets, and a larger bucket by consecutive days) or by days (`_day_cuts`),
    whichever reads fewer of the file's row groups (`_fewest_rows_read`: by their
    `event_time` and `user_id` statistics), each one `COPY … PARTITION_BY` on one thread
    (one file per partition) that names its participants when they are few
    (`_named_users`), the cuts dealt evenly (`_shares`) to `limits.threads` connections (one
    per core when 0), each spilling to its own temp folder. One COPY of every partition at
    once buffered all of them until its end and spilled (2M rows: 3.3 s CPU at 128 MB); a
    cut's partitions fit, whatever the file's size."""
    # five eighths of the stage's memory, shared by the connections. One COPY of every
    # partition at the whole limit was analyze's peak (2M rows: 335 MB RSS at 256 MB);
    # in groups, half (64 MB a connection) cost 3.1-3.2 CPU-s at 2M realistic against
    # 2.7-2.9 at 96 MB (same files, ~200 MB peak at 2M). A COPY's memory follows its rows
    # up to its budget: cut by days, a 50M-row file's COPYs are as small as a 2M one's
    # (docs/scaling.md)
    budget = max(MIN_MEMORY_MB, limits.memory_limit_mb * LAKE_MEMORY_SHARE // 8)
    source = f"read_parquet({source_literal(processed)}, hive_partitioning = false)"
    con = connect(replace(limits, memory_limit_mb=budget))
    try:
        counted = con.execute(
            f"SELECT user_id, {utc_day('event_time')} AS day, count(*) FROM {source} "
            "WHERE user_id IS NOT NULL AND event_time IS NOT NULL GROUP BY ALL"
        ).fetchall()
        groups = _row_group_stats(con, processed)
    finally:
        con.close()
    bucket = {str(user_id): bucket_of(str(user_id)) for user_id in {u for u, _, _ in counted}}
    rows: dict[tuple[int, date], int] = {}
    for user_id, day, n in counted:
        key = (bucket[str(user_id)], day)
        rows[key] = rows.get(key, 0) + int(n)
    users = sorted(bucket)
    members: dict[int, list[str]] = {}
    for user_id in users:
        members.setdefault(bucket[user_id], []).append(user_id)
    cuts = _fewest_rows_read(rows, ROWS_PER_COPY, groups, members)
    workers = min(len(cuts), limits.threads or os.cpu_count() or 1)
    shares = _shares(cuts, workers, lambda cut: _cost(cut, rows, groups, members))
    if workers:
        out_dir.mkdir(parents=True)
        per_worker = replace(
            limits, memory_limit_mb=max(MIN_MEMORY_MB, budget // workers), threads=1
        )
        table = ([*users], [bucket[u] for u in users])
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = [
                pool.submit(
                    _copy_cuts,
                    source,
                    table,
                    [(cut, _named_users(cut, members)) for cut in shares[i]],
                    out_dir,
                    replace(per_worker, temp_dir=limits.temp_dir and limits.temp_dir / f"lake{i}"),
                )
                for i in range(workers)
            ]
            for future in done:
                future.result()  # the first failure fails the write
    return _parts(out_dir)


@dataclass(frozen=True)
class RowGroupStats:
    """One row group of the processed file: its rows, the UTC days of its first and last
    `event_time` and its first and last `user_id` (from the file's statistics; None
    without them)."""

    rows: int
    days: tuple[date, date] | None
    users: tuple[str, str] | None = None


def _row_group_stats(con: duckdb.DuckDBPyConnection, processed: Path) -> list[RowGroupStats]:
    """The processed file's row groups with the days their `event_time` statistics span and
    the `user_id`s theirs do (read from its footer on `con`, a connection in UTC)."""

    def of(column: str, stat: str) -> str:
        return f"CASE WHEN path_in_schema = '{column}' THEN {stat} END"

    found = con.execute(
        f"SELECT row_group_id, any_value(row_group_num_rows), "
        f"min({utc_day(of('event_time', 'TRY_CAST(stats_min_value AS TIMESTAMPTZ)'))}), "
        f"max({utc_day(of('event_time', 'TRY_CAST(stats_max_value AS TIMESTAMPTZ)'))}), "
        f"min({of('user_id', 'stats_min_value')}), max({of('user_id', 'stats_max_value')}) "
        f"FROM parquet_metadata({source_literal(processed)}) "
        "WHERE path_in_schema IN ('event_time', 'user_id') "
        "GROUP BY row_group_id ORDER BY row_group_id"
    ).fetchall()
    return [
        RowGroupStats(
            int(n),
            (first, last) if first is not None and last is not None else None,
            (str(low), str(high)) if low is not None and high is not None else None,
        )
        for _, n, first, last, low, high in found
    ]


def _named_users(cut: LakeCut, members: Mapping[int, Sequence[str]]) -> list[str] | None:
    """The participants of `cut`'s buckets, in order, when they are few enough to name
    (MAX_NAMED_USERS; None: more)."""
    named: list[str] = []
    for b in range(cut.first, cut.last + 1):
        named += members.get(b, ())
        if len(named) > MAX_NAMED_USERS:
            return None
    return sorted(named)


def _rows_read(
    cuts: list[LakeCut],
    groups: list[RowGroupStats],
    members: Mapping[int, Sequence[str]] | None = None,
) -> int:
    """The rows the COPYs of `cuts` read, as DuckDB prunes by the statistics: a cut bounded
    by days skips the row groups whose `event_time` lies outside them, and a cut that names
    its participants (`members`: each bucket's `user_id`s; None: not known) the row groups
    whose `user_id`s hold none of them; any other reads all."""
    total = 0
    for cut in cuts:
        named = None if members is None else _named_users(cut, members)
        for group in groups:
            days, span = cut.days, group.days
            if days is not None and span is not None and (span[0] > days[1] or days[0] > span[1]):
                continue
            if named is not None and group.users is not None:
                low, high = group.users
                at = bisect_left(named, low)
                if at == len(named) or named[at] > high:
                    continue
            total += group.rows
    return total


def _holds(cut: LakeCut, bucket: int, day: date) -> bool:
    in_days = cut.days is None or cut.days[0] <= day <= cut.days[1]
    return cut.first <= bucket <= cut.last and in_days


def _cost(
    cut: LakeCut,
    rows: dict[tuple[int, date], int],
    groups: list[RowGroupStats],
    members: Mapping[int, Sequence[str]] | None = None,
) -> int:
    """A cut's work in rows written: its partitions' rows, and the rows it reads at about an
    eighth of the cost (2M rows: a COPY of 225k rows writes in 0.18 CPU-s, reads the whole
    file in 0.19)."""
    written = sum(n for (b, day), n in rows.items() if _holds(cut, b, day))
    return written + _rows_read([cut], groups, members) // READ_COST_RATIO


def _shares(
    cuts: list[LakeCut], workers: int, cost: Callable[[LakeCut], int]
) -> list[list[LakeCut]]:
    """The cuts dealt to `workers` connections so that their work is even: the costliest
    first, each to the least loaded (a day split by buckets leaves one large cut and one
    small; dealt in turn, the large ones went to one connection: 2.0 s against 0.7)."""
    costs = {cut.index: cost(cut) for cut in cuts}
    shares: list[list[LakeCut]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for cut in sorted(cuts, key=lambda c: (-costs[c.index], c.index)):
        least = loads.index(min(loads))
        shares[least].append(cut)
        loads[least] += costs[cut.index]
    return shares


def _fewest_rows_read(
    rows: dict[tuple[int, date], int],
    per_cut: int,
    groups: list[RowGroupStats],
    members: Mapping[int, Sequence[str]] | None = None,
) -> list[LakeCut]:
    """The cuts by buckets (`_cuts`) or by days (`_day_cuts`), whichever reads fewer rows
    of the processed file (`_rows_read`; `members`: each bucket's participants). A file in
    time order (an export, most wearables' files) has row groups of a few hours each, and a
    COPY of a day's partitions reads only those (2M realistic rows: 3 of 16 row groups a
    COPY). A file in participant order (an export per participant, the original system's
    files) has row groups of a few participants each, and a COPY of a bucket's partitions
    reads only its participants' (50M uniform rows: the day cuts read the whole file 209
    times, 460 CPU-s; the bucket cuts 70 CPU-s for the whole lake). Rows in neither order
    are read whole by any cut, so they keep the bucket cuts (a tie). Both hold each
    partition in exactly one cut."""
    by_buckets = _cuts(rows, per_cut)
    by_days = _day_cuts(rows, per_cut)
    if _rows_read(by_days, groups, members) < _rows_read(by_buckets, groups, members):
        return by_days
    return by_buckets


def _day_cuts(rows: dict[tuple[int, date], int], per_cut: int) -> list[LakeCut]:
    """The COPYs of the partitions `rows` by reading day: consecutive days of every bucket,
    a new cut when the next day would take it above `per_cut` rows; a day of more than
    `per_cut` rows alone, cut by consecutive buckets the same way (`_two_level_runs`).
    Every partition is in exactly one cut."""
    by_day: dict[date, dict[int, int]] = {}
    for (b, day), n in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
        by_day.setdefault(day, {})[b] = n
    if not by_day:
        return []
    lowest, highest = min(b for b, _ in rows), max(b for b, _ in rows)
    return [
        LakeCut(i, lowest, highest, (first, last))
        if buckets is None
        else LakeCut(i, buckets[0], buckets[1], (first, first))
        for i, (first, last, buckets) in enumerate(_two_level_runs(by_day, per_cut))
    ]


def _cuts(rows: dict[tuple[int, date], int], per_cut: int) -> list[LakeCut]:
    """The COPYs of the partitions `rows` ((bucket, day) -> rows): consecutive buckets, a new
    cut when the next bucket would take it above `per_cut` rows; a bucket of more than
    `per_cut` rows alone, cut by consecutive days the same way (a larger day is a cut of its
    own; `_two_level_runs`). Every partition is in exactly one cut."""
    by_bucket: dict[int, dict[date, int]] = {}
    for (b, day), n in sorted(rows.items()):
        by_bucket.setdefault(b, {})[day] = n
    return [
        LakeCut(i, first, last, days)
        for i, (first, last, days) in enumerate(_two_level_runs(by_bucket, per_cut))
    ]


def _two_level_runs(
    nested: dict[K, dict[J, int]], per_cut: int
) -> list[tuple[K, K, tuple[J, J] | None]]:
    """Runs of consecutive outer keys of `nested` (outer -> inner -> rows, both in order) of
    at most `per_cut` rows: (first, last, None); an outer key of more rows alone, in runs of
    its consecutive inner keys: (key, key, (first inner, last inner)). `runs.weighted_runs`
    at both levels."""
    totals = [(key, sum(inner.values())) for key, inner in nested.items()]
    found: list[tuple[K, K, tuple[J, J] | None]] = []
    for run in weighted_runs(totals, per_cut):
        first, last = run[0], run[-1]
        inner = nested[first]
        if first != last or sum(inner.values()) <= per_cut:
            found.append((first, last, None))
            continue
        found += [
            (first, first, (span[0], span[-1])) for span in weighted_runs(inner.items(), per_cut)
        ]
    return found


def _copy_cuts(
    source: str,
    table: tuple[list[str], list[int]],
    cuts: list[tuple[LakeCut, list[str] | None]],
    out_dir: Path,
    limits: EngineLimits,
) -> None:
    """COPY each cut's rows into `out_dir/g<index>/pb=<bucket>/dt=<day>/`, on one connection
    of one thread, so one file per partition (the order of its rows is not specified:
    DuckDB's partitioned COPY does not keep the processed file's, even on one thread).

    The partition values are the bucket as an INTEGER and the day as a DATE, not their key
    text ('07', '2025-06-01'): the COPY sorts its rows by them, and a text made per row cost
    more (the whole write at 2M realistic rows, two rounds beside another job: 2.56 / 2.61
    CPU-s with text, 2.40 / 2.33 without). The folders are named `pb=7`; `_parts` reads the
    numbers back, and the keys are written by `identity.lake_readings_key`."""
    con = connect(limits)
    try:
        con.execute(
            "CREATE TEMP TABLE buckets AS SELECT unnest($1::VARCHAR[]) AS user_id, "
            "unnest($2::INTEGER[]) AS bucket",
            list(table),
        )
        for cut, named in cuts:
            listed = ", ".join(quote_literal(u) for u in named or ())
            users = f" AND r.user_id IN ({listed})" if listed else ""
            con.execute(
                f"COPY (SELECT r.*, b.bucket AS pb, {utc_day('r.event_time')} AS dt "
                f"FROM {source} r JOIN buckets b USING (user_id) "
                f"WHERE r.event_time IS NOT NULL AND {cut.where()}{users}) "
                f"TO {quote_literal(str(out_dir / f'g{cut.index}'))} "
                "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (pb, dt))"
            )
    finally:
        con.close()


def _parts(out_dir: Path) -> list[LakePart]:
    """The written files, one per partition (one thread wrote each), by bucket and day."""
    parts: list[LakePart] = []
    for folder in out_dir.glob("g*/pb=*/dt=*"):
        files = sorted(folder.glob("*.parquet"))
        if len(files) != 1:
            raise RuntimeError(f"lake partition with {len(files)} files, expected 1")
        parts.append(
            LakePart(
                int(folder.parent.name.removeprefix("pb=")),
                folder.name.removeprefix("dt="),
                files[0],
            )
        )
    return sorted(parts, key=lambda part: (part.bucket, part.day))
