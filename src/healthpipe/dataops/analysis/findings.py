"""The findings: every anomaly of every reading, found over groups of whole users of a
bounded number of readings (one sort each; how a reading is abnormal is coded in one BIGINT
before it; the groups side by side, one per core), written as narrow Parquet parts and
joined, named, into the anomaly file at the end. Each group's episodes are found on the way
(`episodes`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import duckdb

from healthpipe.dataops.analysis.common import AnalysisLimits
from healthpipe.dataops.analysis.episodes import episodes_sql
from healthpipe.dataops.analysis.flags import (
    ACTIVITY_BIT,
    BREAK_BIT,
    CLINICAL_BIT,
    CONFLICTING_BIT,
    in_list,
)
from healthpipe.dataops.engine import EngineLimits, source_list
from healthpipe.dataops.runs import weighted_runs
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import (
    ANOMALY_ITEMS,
    BASELINE_METRICS,
    BASELINE_STATS,
    anomaly_code_sql,
    baseline_column,
    bp_items,
    bp_trigger_sql,
    clinical_code_mask,
    heart_rate_items,
    item_band_sql,
    item_kind_sql,
    item_metric_sql,
    item_rule_sql,
    item_severity_sql,
    item_values_sql,
    kinds,
)
from healthpipe.domain.validation_sql import quote_ident, quote_literal

# Anomalies and episodes run over groups of whole users of about this many readings per MB
# of the engine's memory limit (a group's readings are sorted in memory, with its anomalies),
# a size that holds a file of SIZED_FOR_FINDINGS findings per reading (the 2M uniform file:
# 2.4). The groups after the first ones are sized by the findings per reading of the first
# (`_grown`): a reading and a finding take about as much memory in a group (the 2M files'
# peaks: 46 and 41 bytes), so a group of d findings per reading holds (1 + 2.5) / (1 + d)
# times the readings, up to MAX_GROWTH times.
READINGS_PER_MB = 1000
MIN_READINGS_PER_GROUP = 50_000
SIZED_FOR_FINDINGS = 2.5
MAX_GROWTH = 2.0

UserRun = list[str | None]


def _user_filter(run: UserRun) -> str:
    """SQL: the readings (`r`) of one run of users."""
    named = [u for u in run if u is not None]
    terms = ["r.user_id IS NULL"] if len(named) < len(run) else []
    if named:
        terms.append(f"r.user_id BETWEEN {quote_literal(named[0])} AND {quote_literal(named[-1])}")
    return "(" + " OR ".join(terms) + ")"


def _grown(readings_per_group: int, readings: int, findings: int) -> int:
    """The readings of a group sized by the density of a first group of `readings` readings
    and `findings` findings: a sparse file's groups hold more readings (fewer groups, each of
    which reads the whole processed file when it is in time order), a denser file's fewer,
    in the same memory (SIZED_FOR_FINDINGS, MAX_GROWTH). Measured at 2M rows, the stage
    alone: realistic (0.54 findings a reading; 8 groups -> 2 + 4) 7.72-7.85 CPU-s against
    8.06-8.53 and peak RSS 239-245 MB against 221-224 (2 + 3 groups: 7.56-7.71 CPU-s,
    260-265 MB, but the last group ran alone); uniform unchanged (12.3-12.5 CPU-s). All
    groups twice as large cost uniform 14.06 CPU-s against 12.41 (they spill); four
    times, realistic 8.06 and 271 MB."""
    density = findings / readings if readings else 0.0
    growth = min(MAX_GROWTH, (1.0 + SIZED_FOR_FINDINGS) / (1.0 + density))
    return max(MIN_READINGS_PER_GROUP, int(readings_per_group * growth))


def _group_count(readings: int, grown: int, per_group: int, side_by_side: int) -> int:
    """How many groups `readings` readings make: of at most about `grown` readings each, as
    many as a multiple of the groups run at once, so that the last round keeps every thread
    busy, unless that makes them smaller than the first groups (`per_group`: with many
    threads and few readings left, each group of a file in time order reads it whole)."""
    count = max(1, -(-readings // max(1, grown)))
    rounded = -(-count // side_by_side) * side_by_side
    return min(rounded, max(count, -(-readings // max(1, per_group))))


def _balanced_runs(users: list[tuple[str | None, int]], count: int) -> list[UserRun]:
    """The users (user_id, readings), in user order, in at most `count` consecutive runs of
    about even readings (a user is never split: each goes to the run its middle reading
    falls in)."""
    total = sum(n for _, n in users)
    runs: list[UserRun] = [[] for _ in range(count)]
    before = 0
    for user, n in users:
        at = min(count - 1, (2 * before + n) * count // (2 * total)) if total else 0
        runs[at].append(user)
        before += n
    return [run for run in runs if run]


USED_COLUMNS = sorted({i.column for i in ANOMALY_ITEMS} | {"systolic_bp", "diastolic_bp"})


def _coded_readings_sql(src: str, where: str) -> str:
    """The group's readings, each with its user's number (uid) and `code`: whether and how
    it is abnormal, one BIGINT worked out before the sort; in user, time order."""
    vitals = ", ".join(f"r.{quote_ident(m)}" for m in USED_COLUMNS)
    baselines = ", ".join(
        f"u.{baseline_column(stat, m)}" for m in BASELINE_METRICS for stat in BASELINE_STATS
    )
    return (
        f"SELECT uid, source_row, event_time, {', '.join(quote_ident(m) for m in USED_COLUMNS)}, "
        f"steps, conflicting, {anomaly_code_sql()} AS code FROM (SELECT u.uid, r.source_row, "
        f"r.event_time, {vitals}, r.steps, r.conflicting, {baselines} FROM {src} r "
        f"JOIN users u ON u.user_id IS NOT DISTINCT FROM r.user_id WHERE {where}) "
        "ORDER BY uid, event_time NULLS LAST, source_row"
    )


def _ordered_readings_sql(coded: str) -> str:
    """The coded readings with `ord` (their place in the group) and the steps, user and time
    of the reading before (streaming windows: they keep the order)."""
    return (
        "SELECT *, row_number() OVER () AS ord, lag(steps) OVER () AS prev_steps, "
        "lag(uid) OVER () AS prev_uid, lag(event_time) OVER () AS prev_time "
        f"FROM ({coded})"
    )


def _flags_sql(limits: AnalysisLimits) -> str:
    """A reading's flags (CONFLICTING_BIT, ACTIVITY_BIT, CLINICAL_BIT, BREAK_BIT) under the
    activity threshold and the episode gap of `limits`."""
    steps = float(limits.activity_steps_above)
    since = "(epoch(event_time) - epoch(prev_time))"
    within = float(cl.ACTIVITY_PREVIOUS_WITHIN_SECONDS)
    return (
        f"(CASE WHEN conflicting THEN {CONFLICTING_BIT} ELSE 0 END) | (CASE WHEN steps > {steps!r} "
        f"OR (prev_uid = uid AND prev_steps > {steps!r} AND {since} <= {within!r}) "
        f"THEN {ACTIVITY_BIT} ELSE 0 END) | "
        f"(CASE WHEN (code & {clinical_code_mask()}) <> 0 THEN {CLINICAL_BIT} ELSE 0 END) | "
        f"(CASE WHEN prev_uid = uid AND {since} <= {float(limits.episode_gap_seconds)!r} THEN 0 "
        f"ELSE {BREAK_BIT} END)"
    )


def _flagged_items_sql(ordered: str, limits: AnalysisLimits) -> str:
    """One row per item of each reading its code flags, with the band: the flags and the
    values are worked out once per flagged reading, and only the flagged items of its code
    are unnested (not every item, then filtered); `first`: the reading's first item."""
    flagged = f"lambda i: {item_band_sql('code', 'i')} > 0"
    readings = (
        "SELECT uid, ord, source_row, event_time, code, systolic_bp, diastolic_bp, "
        f"{_flags_sql(limits)} AS flags, {item_values_sql()} AS vals, "
        f"list_filter(range({len(ANOMALY_ITEMS)}), {flagged}) AS items FROM ({ordered}) "
        "WHERE code <> 0"
    )
    return (
        "SELECT uid, ord, source_row, event_time, code, systolic_bp, diastolic_bp, flags, "
        "unnest(items) AS item, items[1] AS first_item, vals "
        f"FROM ({readings})"
    )


def _banded_items_sql(items: str) -> str:
    """The flagged items with their band and value."""
    band = item_band_sql("code", "item")
    return (
        f"SELECT uid, ord, source_row, event_time, CAST(item AS UTINYINT) AS item, "
        f"CAST({band} AS UTINYINT) AS band, flags, vals[item + 1] AS value, systolic_bp, "
        f"diastolic_bp, item = first_item AS first FROM ({items})"
    )


def _group_anomalies_sql(src: str, where: str, limits: AnalysisLimits) -> str:
    """The anomalies of one group of users in (user, time, metric, rule) order: uid, ord (the
    reading's place in the group's readings in user, time order), source_row, event_time,
    item (of ANOMALY_ITEMS), band (of the item), severity (heart-rate findings during
    activity capped at low below NEWS2 3), flags (CONFLICTING_BIT, ACTIVITY_BIT,
    CLINICAL_BIT, BREAK_BIT), value, the pair sbp/dbp on blood-pressure items, and `first`
    (the reading's first finding: readings are counted without a DISTINCT). Needs
    preserve_insertion_order (one sort, then streaming operators, the window included, that
    keep its order).
    """
    banded = _banded_items_sql(
        _flagged_items_sql(_ordered_readings_sql(_coded_readings_sql(src, where)), limits)
    )
    severity = item_severity_sql("item", "band")
    return (
        "SELECT uid, ord, source_row, event_time, item, band, CAST(CASE WHEN item IN "
        f"{in_list(heart_rate_items())} AND (flags & {ACTIVITY_BIT}) <> 0 AND {severity} < 3 "
        f"THEN least({severity}, 1) ELSE {severity} END AS UTINYINT) AS severity, "
        "CAST(flags AS UTINYINT) AS flags, value, "
        f"CASE WHEN item IN {in_list(bp_items())} THEN systolic_bp END AS sbp, "
        f"CASE WHEN item IN {in_list(bp_items())} THEN diastolic_bp END AS dbp, first FROM ("
        f"{banded})"
    )


def _enum(values: Iterable[str]) -> str:
    return "ENUM(" + ", ".join(quote_literal(v) for v in sorted(set(values))) + ")"


# The text columns of the anomaly file that hold a few known values, as ENUM types (in name
# order, so that they sort as the text does). DuckDB writes an ENUM as the same Parquet
# column as the text (UTF8 strings, dictionary-encoded, the same statistics) without hashing
# every value into the dictionary: 4.7M findings (2M uniform rows) wrote in 1.8 CPU-s
# against 2.1 on the join's one thread. Read back, they are VARCHAR.
STORED_ENUMS = {
    "metric": _enum(item.metric for item in ANOMALY_ITEMS),
    "kind": _enum(kinds()),
    "rule": _enum(item.rule for item in ANOMALY_ITEMS),
    "bp_trigger": _enum(get_args(cl.BpTrigger)),
}


def decorated_sql(anomalies: str) -> str:
    """The anomaly rows as written: metric, kind and rule by name (as STORED_ENUMS: looked
    up in typed lists, no string made per row; the joined file's write of 4.7M findings,
    1.9 CPU-s cast from text, 1.5 from the typed lists), the user by id, the BP pair and the
    part of it that triggered the category, and the reading's flags."""
    metric = item_metric_sql("a.item", STORED_ENUMS["metric"])
    kind = item_kind_sql("a.item", "a.band", STORED_ENUMS["kind"])
    rule = item_rule_sql("a.item", STORED_ENUMS["rule"])
    named = (
        f"SELECT a.source_row, users[a.uid] AS user_id, a.event_time, {metric} AS metric, "
        f"{kind} AS kind, CAST(a.severity AS INTEGER) AS severity, a.value, {rule} AS rule, "
        "a.sbp AS systolic_bp, a.dbp AS diastolic_bp, a.flags FROM "
        f"{anomalies} a, (SELECT list(user_id ORDER BY uid) AS users FROM users)"
    )
    return (
        "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule, "
        "systolic_bp, diastolic_bp, CASE WHEN rule = 'acc_aha' THEN "
        f"{bp_trigger_sql('kind', 'systolic_bp', 'diastolic_bp')} END AS bp_trigger, "
        f"(flags & {ACTIVITY_BIT}) <> 0 AS during_activity, "
        f"(flags & {CONFLICTING_BIT}) <> 0 AS conflicting, "
        f"(flags & {CLINICAL_BIT}) <> 0 AS with_clinical_finding FROM ({named})"
    )


def stored_sql(anomalies: str) -> str:
    """The anomaly rows of `anomalies` (`decorated_sql`'s columns) as the file is written:
    the same rows, the known-valued text columns as STORED_ENUMS."""
    casts = ", ".join(
        f"CAST({column} AS {kind}) AS {column}" for column, kind in STORED_ENUMS.items()
    )
    return f"SELECT * REPLACE ({casts}) FROM ({anomalies})"


def _user_counts_sql() -> str:
    """Per user of one group: findings, by severity, the worst, and the readings flagged
    (all, and without the conflicting ones), from the group's anomalies."""
    return (
        "SELECT uid, count(*) AS anomalies, count(*) FILTER (WHERE severity = 3) AS high, "
        "count(*) FILTER (WHERE severity = 2) AS medium, "
        "count(*) FILTER (WHERE severity = 1) AS low, max(severity) AS worst, "
        "count(*) FILTER (WHERE first) AS readings, count(*) FILTER (WHERE first AND "
        f"(flags & {CONFLICTING_BIT}) = 0) AS readings_flagged FROM group_anomalies GROUP BY uid"
    )


@dataclass(frozen=True)
class _GroupFiles:
    """One group's files in the pass's temporary folder: its anomaly part (unless it is the
    only group), its episodes, and its per-user and per-finding counts."""

    part: Path
    episodes: Path
    user_counts: Path
    finding_counts: Path

    @classmethod
    def of(cls, tmp: Path, number: int) -> _GroupFiles:
        return cls(
            *(tmp / f"{kind}-{number:05d}.parquet" for kind in _GROUP_FILE_KINDS),
        )


_GROUP_FILE_KINDS = ("part", "episodes", "user-counts", "finding-counts")


def _find_group(
    con: duckdb.DuckDBPyConnection, group_sql: str, files: _GroupFiles, single: Path | None
) -> None:
    """One group's anomalies (to `single`, named, when it is the only group, else to its
    narrow part), its episodes and its counts, each to its file; on `con` (a cursor of its
    own when groups run side by side: the temporary table is the cursor's)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE group_anomalies AS {group_sql}")
    if single is not None:
        con.execute(
            f"COPY ({stored_sql(decorated_sql('group_anomalies'))}) TO "
            f"{quote_literal(str(single))} (FORMAT parquet, COMPRESSION zstd)"
        )
    else:
        con.execute(
            "COPY (SELECT uid, source_row, event_time, item, band, severity, flags, value, "
            f"sbp, dbp FROM group_anomalies) TO {quote_literal(str(files.part))} "
            "(FORMAT parquet, COMPRESSION uncompressed)"
        )
    # streaming windows: in order; to a file, not a table that grows with the file
    con.execute(
        f"COPY ({episodes_sql('group_anomalies')}) TO "
        f"{quote_literal(str(files.episodes))} (FORMAT parquet)"
    )
    con.execute(
        f"COPY ({_user_counts_sql()}) TO {quote_literal(str(files.user_counts))} (FORMAT parquet)"
    )
    con.execute(
        "COPY (SELECT item, band, severity, flags, count(*) AS n FROM group_anomalies "
        f"GROUP BY item, band, severity, flags) TO {quote_literal(str(files.finding_counts))} "
        "(FORMAT parquet)"
    )
    con.execute("DROP TABLE group_anomalies")


def _on_cursor(con: duckdb.DuckDBPyConnection, group_sql: str, files: _GroupFiles) -> None:
    cursor = con.cursor()
    try:
        _find_group(cursor, group_sql, files, None)
    finally:
        cursor.close()


def find_anomalies(
    con: duckdb.DuckDBPyConnection,
    src: str,
    anomalies_out: Path,
    limits: EngineLimits,
    tmp: Path,
    analysis: AnalysisLimits,
) -> tuple[int, list[Path]]:
    """Write every anomaly and every episode (view `episodes` over Parquet parts in `tmp`),
    and fill `user_counts` (`_user_counts_sql`, by uid) and `finding_counts` (the findings
    by item, band, severity and flags), one group of users at a time; the anomalies go to
    `anomalies_out` when there is one group, else to narrow parts in `tmp` (in order) that
    `join_parts` makes into it. Returns the number of readings flagged and the parts.

    A group's statements run mostly on one thread (the streaming windows and the ordered
    writes keep their order), so the groups run side by side, one cursor each, as many at
    once as the engine has threads (`limits.threads`, 0: one per core; the grouped analysis's
    processes have one each). The first groups are of the size that holds the densest files
    (`READINGS_PER_MB`); the others are sized once the first is done, by its findings per
    reading (`_grown`), so the groups are the same whatever order they end in. Smaller
    groups cost more: halved, each statement's scan of `src` ran twice as often (2M
    realistic rows: 3.8-4.2 CPU-s against 3.0-3.1); the connection's memory limit holds for
    both (2M uniform rows: the stage's peak RSS 266 MB against 235 MB one group at a time).
    Everything `src` reads must be visible to a cursor (no temporary tables). The files are
    named by group, so the result is the same whatever order the groups end in."""
    side_by_side = max(1, limits.threads or os.cpu_count() or 1)
    per_group = max(MIN_READINGS_PER_GROUP, limits.memory_limit_mb * READINGS_PER_MB)
    users = [
        (user, int(readings))
        for user, readings in con.execute(
            "SELECT user_id, readings FROM users ORDER BY uid"
        ).fetchall()
    ]
    # users are never split (`runs.weighted_runs`: the participant groups' and the lake's
    # COPYs' rule too)
    runs: list[UserRun] = weighted_runs(users, per_group)
    con.execute("SET preserve_insertion_order = true")
    try:
        if len(runs) <= 1:
            files = [_GroupFiles.of(tmp, 0)]
            _find_group(con, _group_anomalies_sql(src, "TRUE", analysis), files[0], anomalies_out)
        else:
            files = _find_groups(con, src, tmp, analysis, users, runs, per_group, side_by_side)
    finally:
        con.execute("SET preserve_insertion_order = false")
    con.execute(
        "CREATE TEMP TABLE user_counts AS SELECT * FROM "
        f"{parts_sql([f.user_counts for f in files])}"
    )
    con.execute(
        "CREATE TEMP TABLE finding_counts AS SELECT * FROM "
        f"{parts_sql([f.finding_counts for f in files])}"
    )
    con.execute(
        f"CREATE TEMP VIEW episodes AS SELECT * FROM {parts_sql([f.episodes for f in files])}"
    )
    (count,) = con.execute("SELECT sum(readings) FROM user_counts").fetchone() or (0,)
    flagged = int(count or 0)
    return flagged, ([] if len(files) == 1 else [f.part for f in files])


def _find_groups(
    con: duckdb.DuckDBPyConnection,
    src: str,
    tmp: Path,
    analysis: AnalysisLimits,
    users: list[tuple[str | None, int]],
    runs: list[UserRun],
    per_group: int,
    side_by_side: int,
) -> list[_GroupFiles]:
    """`find_anomalies` over several groups: the first `side_by_side` of `runs` at once,
    then, once the first is done, the users after them in groups sized by its density
    (`_grown`), as many as a multiple of `side_by_side` and of even readings, so that the
    last ones end together (2M realistic rows in groups of 2 + 3, the last one ran alone
    for a third of a second). Returns every group's files, in user order."""
    opening = runs[:side_by_side]
    files: list[_GroupFiles] = []
    with ThreadPoolExecutor(max_workers=min(side_by_side, len(runs))) as pool:
        pending = []

        def submit(run: UserRun) -> None:
            group = _GroupFiles.of(tmp, len(files))
            files.append(group)
            sql = _group_anomalies_sql(src, _user_filter(run), analysis)
            pending.append(pool.submit(_on_cursor, con, sql, group))

        for run in opening:
            submit(run)
        if len(runs) > len(opening):
            pending[0].result()
            (found,) = con.execute(
                f"SELECT coalesce(sum(anomalies), 0) FROM {parts_sql([files[0].user_counts])}"
            ).fetchone() or (0,)
            first_readings = sum(n for _, n in users[: len(opening[0])])
            grown = _grown(per_group, first_readings, int(found))
            rest = users[sum(len(r) for r in opening) :]
            count = _group_count(sum(n for _, n in rest), grown, per_group, side_by_side)
            for run in _balanced_runs(rest, count):
                submit(run)
        for done in pending:
            done.result()  # the first failure fails the pass
    return files


def parts_sql(parts: list[Path]) -> str:
    return f"read_parquet({source_list(parts)})"


def join_parts(cursor: duckdb.DuckDBPyConnection, parts: list[Path], out: Path) -> None:
    """The parts, named, as one file in order. On one thread: with two, row groups wait in
    memory for their turn; the summaries run on the other core meanwhile."""
    try:
        (threads,) = cursor.execute("SELECT current_setting('threads')").fetchone() or (1,)
        cursor.execute("SET preserve_insertion_order = true")
        cursor.execute("SET threads = 1")
        try:
            cursor.execute(
                f"COPY ({stored_sql(decorated_sql(parts_sql(parts)))}) TO "
                f"{quote_literal(str(out))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            cursor.execute(f"SET threads = {int(threads)}")
    finally:
        cursor.close()
