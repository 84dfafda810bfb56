"""The analysis of a processed file in groups of participants, each group on its own DuckDB
(on a pool of spawned processes, or in this process), with the bounded facts merged: what
`analyze_parquet` with its severity facts gives for the whole file, and the same
anomaly file (rows, and their order), with memory flat in the file size.

1. `split_participants`: one streaming aggregate of the whole file (moments, time range,
   NEWS2 / BP-category distributions: `stats.file_aggregates`); its participants in
   `user_id` order cut into contiguous groups of at most `group_rows` readings (a
   participant is never split); each group's rows (and conflicting rows) written apart.
2. `analyze_split`: each group runs the single path's functions on its rows (everything per
   participant, baselines, findings, episodes, counts, risk rows, is complete in its group),
   its own top participants and their severity facts; then the merge:
   - quantiles and histograms from the count of each distinct value of each vital, summed
     over the groups (`stats.metric_stats` over the merged counts);
   - finding counts add; the top findings, the timeline, the episode and users' summaries
     are the summaries' own SQL over views of every group's files;
   - severity facts: counts add, and the top lists merge by their sort keys (each group's
     list holds its share of the file's list, since each participant's figures are complete
     in one group);
   - the groups' anomaly files, concatenated in group order, are the single path's file row
     for row (it orders the findings by participant).

docs/scaling.md, "Analyze at that size: participant groups", has the figures.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from healthpipe.dataops.analysis.common import GROUP_PARQUET, AnalysisLimits, parquet_source
from healthpipe.dataops.analysis.day_counts import BaselineRow, apply_history_baselines
from healthpipe.dataops.analysis.findings import find_anomalies, join_parts, parts_sql, stored_sql
from healthpipe.dataops.analysis.readings import conflicting_rows, readings_sql, users_table
from healthpipe.dataops.analysis.stats import (
    count_values,
    distributions,
    file_aggregates,
    metric_stats,
)
from healthpipe.dataops.analysis.summaries import anomaly_summary, episode_summary, user_summary
from healthpipe.dataops.engine import EngineLimits, connect, source_literal
from healthpipe.dataops.runs import weighted_runs
from healthpipe.dataops.severe import (
    BASELINE_RULE,
    HIGH,
    MAX_HIGH_PARTICIPANTS,
    apply_severity_facts,
)
from healthpipe.dataops.severe import severity_facts as group_severity_facts
from healthpipe.dataops.worker_pool import worker_pool
from healthpipe.domain import clinical as cl
from healthpipe.domain.validation_sql import quote_literal

SEVERITIES = [cl.severity_label(s) for s in (cl.Severity.LOW, cl.Severity.MEDIUM, cl.Severity.HIGH)]
ANOMALIES = "anomalies.parquet"
EPISODES = "episodes.parquet"
USERS = "users.parquet"
USER_COUNTS = "user_counts.parquet"
FINDING_COUNTS = "finding_counts.parquet"
VALUE_COUNTS = "value_counts.parquet"


def processed_rows(parquet: Path, limits: EngineLimits) -> int:
    """The rows of a Parquet file (from its metadata)."""
    con = connect(limits)
    try:
        (rows,) = con.execute(
            f"SELECT count(*) FROM read_parquet({source_literal(parquet)})"
        ).fetchone() or (0,)
    finally:
        con.close()
    return int(rows)


def participant_groups(users: Sequence[tuple[str | None, int]], group_rows: int) -> list[int]:
    """The group of each user of `users` ((user_id, readings) in user order): contiguous
    ranges of users of at most `group_rows` readings (a user with more is a group alone;
    `runs.weighted_runs`, the lake write's rule too)."""
    runs = weighted_runs(((i, n) for i, (_, n) in enumerate(users)), group_rows)
    return [group for group, run in enumerate(runs) for _ in run]


@dataclass(frozen=True)
class GroupJob:
    """One group's analysis (picklable: sent to a spawned process)."""

    index: int
    readings: Path  # the group's rows: `<folder>/*.parquet` (`common.parquet_source`)
    conflicting: Path | None  # the conflicting rows of every group, with their group
    folder: Path  # where the group writes its anomaly file and its bounded facts
    limits: EngineLimits
    analysis: AnalysisLimits
    baselines: tuple[BaselineRow, ...]


@dataclass(frozen=True)
class GroupResult:
    """What a group returns besides its files: readings flagged, its severity facts (for its
    own top participants), and when each participant of its high list was first high."""

    index: int
    flagged: int
    severity: dict[str, Any]
    first_high: dict[str, datetime | None]


def _copy(con: Any, sql: str, out: Path) -> None:
    con.execute(f"COPY ({sql}) TO {quote_literal(str(out))} (FORMAT parquet)")


def analyze_group(job: GroupJob) -> GroupResult:
    """The analysis of one group, as `analyze_parquet` does it for a file, into `job.folder`:
    the anomaly file (in the single path's order), the episodes, the users with their
    readings and counts, the finding counts and the count of each value of each vital."""
    folder = job.folder
    folder.mkdir(parents=True, exist_ok=True)
    src = f"read_parquet({parquet_source(job.readings)}, hive_partitioning = false)"
    anomalies = folder / ANOMALIES
    con = connect(job.limits)
    try:
        with_conflicting = False
        if job.conflicting is not None:
            # not a temporary table: the findings' groups read it on cursors of their own
            # (`readings.conflicting_rows` says the same); a cursor does not see a temporary
            # table, and a group with more readings than one findings group failed
            con.execute(
                "CREATE TABLE conflicting AS SELECT * EXCLUDE (grp) FROM "
                f"read_parquet({source_literal(job.conflicting)}) WHERE grp = {job.index}"
            )
            (n,) = con.execute("SELECT count(*) FROM conflicting").fetchone() or (0,)
            with_conflicting = int(n) > 0
        count_values(con, src)
        users_table(con)
        apply_history_baselines(con, job.baselines)
        tmp_root = job.limits.temp_dir or folder
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix="anomalies-") as tmp:
            flagged, parts = find_anomalies(
                con,
                readings_sql(src, with_conflicting),
                anomalies,
                job.limits,
                Path(tmp),
                job.analysis,
            )
            if parts:
                join_parts(con.cursor(), parts, anomalies)
            _copy(con, "SELECT * FROM episodes", folder / EPISODES)
            # the group's own top participants (the file's are among the groups' tops)
            top = [str(u["user_id"]) for u in user_summary(con, job.analysis)["top"]]
        _copy(
            con,
            "SELECT user_id, CAST(readings AS BIGINT) AS readings FROM users ORDER BY uid",
            folder / USERS,
        )
        _copy(
            con,
            "SELECT u.user_id, c.* EXCLUDE (uid) FROM user_counts c JOIN users u ON u.uid = c.uid",
            folder / USER_COUNTS,
        )
        _copy(con, "SELECT * FROM finding_counts", folder / FINDING_COUNTS)
        _copy(
            con,
            "SELECT metric, x, CAST(sum(n) AS BIGINT) AS n FROM value_counts "
            "WHERE x IS NOT NULL GROUP BY metric, x",
            folder / VALUE_COUNTS,
        )
    finally:
        con.close()
    severity = group_severity_facts(anomalies, top, limits=job.limits)
    listed = [str(u["user_id"]) for u in severity["high_participants"]["list"]]
    return GroupResult(job.index, flagged, severity, _first_high(anomalies, listed, job.limits))


def _first_high(anomalies: Path, users: list[str], limits: EngineLimits) -> dict[str, Any]:
    """When each of `users` was first high (severe's order of its high list: count, then
    this, then the id)."""
    if not users:
        return {}
    con = connect(limits)
    try:
        listed = ", ".join(quote_literal(u) for u in users)
        rows = con.execute(
            "SELECT user_id, min(event_time) FROM "
            f"read_parquet({source_literal(anomalies)}) WHERE severity >= {HIGH} "
            f"AND rule <> {quote_literal(BASELINE_RULE)} AND user_id IN ({listed}) "
            "GROUP BY user_id"
        ).fetchall()
    finally:
        con.close()
    return {str(u): t for u, t in rows}


def merge_severity(results: Sequence[GroupResult]) -> dict[str, Any]:
    """The groups' severity facts as `severe.severity_facts` gives them for the whole file."""
    red_by_metric: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    listed: list[tuple[dict[str, Any], datetime | None]] = []
    flagged: dict[str, int] = {}
    counted: dict[str, dict[str, int]] = {}
    red = total = on_clinical = 0
    for r in results:
        s = r.severity
        red += s["red_scores"]["readings"]
        for m, n in s["red_scores"]["by_metric"].items():
            red_by_metric[m] = red_by_metric.get(m, 0) + n
        total += s["high_participants"]["total"]
        listed += [(u, r.first_high.get(u["user_id"])) for u in s["high_participants"]["list"]]
        for k, n in s["headline"]["by_kind"].items():
            by_kind[k] = by_kind.get(k, 0) + n
        for k, n in s["headline"]["by_severity"].items():
            by_severity[k] = by_severity.get(k, 0) + n
        on_clinical += s["headline"]["baseline_on_clinical"]
        flagged |= s["readings_flagged"]
        counted |= s["headline_by_user"]
    # severe's order: most high findings, then first high (missing last), then the id
    listed.sort(key=lambda x: (-x[0]["high"], x[1] is None, x[1] or 0, x[0]["user_id"]))
    return {
        "red_scores": {"readings": red, "by_metric": dict(sorted(red_by_metric.items()))},
        "high_participants": {
            "total": total,
            "list": [u for u, _ in listed[:MAX_HIGH_PARTICIPANTS]],
        },
        "headline": {
            "by_kind": dict(sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))),
            # low to high, as severe.severity_facts orders them
            "by_severity": {k: by_severity[k] for k in SEVERITIES if k in by_severity},
            "baseline_on_clinical": on_clinical,
        },
        "readings_flagged": flagged,
        "headline_by_user": counted,
    }


# The split's partitioned write holds a buffer per group: small row groups, rows flushed
# often, one thread and at most GROUPS_PER_PASS groups a pass keep it small (2M rows in 25
# groups: 334 MB RSS with DuckDB's defaults, 230 MB so; in 4 groups 132 MB)
SPLIT_ROW_GROUP = 20_000
GROUPS_PER_PASS = 16


def _split(con: Any, rows: str, out: Path, groups: int) -> None:
    """`rows` (with their group `grp`) into `out/grp=N/`, one folder per group."""
    con.execute("SET threads = 1")
    con.execute(f"SET partitioned_write_flush_threshold = {SPLIT_ROW_GROUP}")
    for first in range(0, groups, GROUPS_PER_PASS):
        con.execute(
            f"COPY (SELECT * FROM ({rows}) WHERE grp BETWEEN {first} AND "
            f"{first + GROUPS_PER_PASS - 1}) TO {quote_literal(str(out))} (FORMAT parquet, "
            f"PARTITION_BY (grp), ROW_GROUP_SIZE {SPLIT_ROW_GROUP}, APPEND)"
        )


def _files(folders: Sequence[Path], name: str) -> str:
    return parts_sql([f / name for f in folders])


def _run_groups(jobs: list[GroupJob], workers: int, in_process: bool) -> list[GroupResult]:
    """The groups on a pool of `workers` spawned processes, each taking one group after
    another (a process's peak is its largest group's: 4 and 8 groups of the 2M uniform file in
    one process peaked at 189 and 185 MB; a fresh process per group cost 0.4-0.6 CPU-s more a
    group), or one after the other in this process."""
    if in_process:
        return [analyze_group(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with worker_pool(min(workers, len(jobs)), context) as pool:
        return list(pool.map(analyze_group, jobs))


@dataclass(frozen=True)
class ParticipantSplit:
    """A processed file split by group of participants (`split_participants`): the file's
    own aggregates, each group's rows (`readings[i]`, a glob of Parquet files), its
    participants, and the conflicting rows of every group (None without any)."""

    work: Path
    agg: dict[str, Any]
    readings: list[Path]
    members: list[frozenset[str | None]]
    conflicting: Path | None


def split_participants(
    parquet: Path,
    work: Path,
    *,
    limits: EngineLimits,
    group_rows: int,
    rejected_csv: Path | None = None,
) -> ParticipantSplit:
    """Steps 1 and 2 (see the module docstring) into the folder `work`: the file's aggregates
    (one streaming pass), its participants in groups of at most `group_rows` readings, and
    each group's rows (and conflicting rows of the rejected CSV) written apart. The groups'
    readings serve the participants' day histograms too (`day_counts` of each, in order)."""
    src = f"read_parquet({source_literal(parquet)})"
    work.mkdir(parents=True, exist_ok=True)
    con = connect(limits)
    try:
        agg = file_aggregates(con, src)
        users = [
            (u, int(n))
            for u, n in con.execute(
                f"SELECT user_id, count(*) FROM {src} GROUP BY user_id ORDER BY user_id NULLS LAST"
            ).fetchall()
        ]
        groups = participant_groups(users, group_rows)
        con.execute(
            "CREATE TEMP TABLE user_groups AS SELECT unnest($1::VARCHAR[]) AS user_id, "
            "unnest($2::INTEGER[]) AS grp",
            [[u for u, _ in users], groups],
        )
        join = "JOIN user_groups g ON g.user_id IS NOT DISTINCT FROM r.user_id"
        conflicting = None
        if rejected_csv is not None and conflicting_rows(con, rejected_csv):
            conflicting = work / "conflicting.parquet"
            _copy(con, f"SELECT r.*, g.grp FROM conflicting r {join}", conflicting)
        readings = work / "readings"
        _split(con, f"SELECT r.*, g.grp FROM {src} r {join}", readings, len(set(groups)))
    finally:
        con.close()
    count = (groups[-1] + 1) if groups else 0
    members: list[set[str | None]] = [set() for _ in range(count)]
    for (user, _), group in zip(users, groups, strict=True):
        members[group].add(user)
    return ParticipantSplit(
        work,
        agg,
        [readings / f"grp={i}" / GROUP_PARQUET for i in range(count)],
        [frozenset(m) for m in members],
        conflicting,
    )


def analyze_split(
    split: ParticipantSplit,
    anomalies_out: Path,
    *,
    limits: EngineLimits,
    workers: int = 0,
    in_process: bool = False,
    analysis_limits: AnalysisLimits | None = None,
    history_baselines: Sequence[BaselineRow] = (),
) -> dict[str, Any]:
    """Steps 3 and 4 (see the module docstring) over a split file: `analyze_parquet` then
    severity facts of the whole file, from its groups, on `workers` spawned processes
    (0: one per core), or one group after the other in this process (`in_process`: tests).
    Each group's DuckDB has `limits`' memory and its share of the cores.
    `history_baselines` as `analyze_parquet`'s."""
    top = analysis_limits or AnalysisLimits()
    workers = workers or (os.cpu_count() or 1)
    count = len(split.readings)
    processes = min(workers, count) or 1
    threads = limits.threads or max(1, (os.cpu_count() or 1) // processes)
    jobs = [
        GroupJob(
            index=i,
            readings=split.readings[i],
            conflicting=split.conflicting,
            folder=split.work / f"group-{i:05d}",
            limits=replace(
                limits,
                threads=threads,
                temp_dir=(limits.temp_dir or split.work) / f"group-{i:05d}-tmp",
            ),
            analysis=top,
            baselines=tuple(b for b in history_baselines if b[0] in split.members[i]),
        )
        for i in range(count)
    ]
    results = _run_groups(jobs, workers, in_process)
    return merge_groups(
        split.agg, [job.folder for job in jobs], results, anomalies_out, limits, top
    )


def merge_groups(
    agg: dict[str, Any],
    folders: list[Path],
    results: list[GroupResult],
    anomalies_out: Path,
    limits: EngineLimits,
    top: AnalysisLimits,
) -> dict[str, Any]:
    """The file's facts from the groups' files and results (see the module docstring), and
    the groups' anomaly files as one, in group order."""
    con = connect(limits)
    try:
        con.execute(
            "CREATE TEMP TABLE value_counts AS SELECT metric, CAST(NULL AS VARCHAR) AS user_id, "
            f"x, n FROM {_files(folders, VALUE_COUNTS)}"
        )
        facts: dict[str, Any] = {**metric_stats(con, agg), **distributions(agg)}
        con.execute(
            "CREATE TEMP TABLE users AS SELECT row_number() OVER (ORDER BY user_id NULLS LAST) "
            f"AS uid, user_id, CAST(readings AS HUGEINT) AS readings FROM {_files(folders, USERS)}"
        )
        con.execute(
            "CREATE TEMP TABLE user_counts AS SELECT u.uid, c.* EXCLUDE (user_id) FROM "
            f"{_files(folders, USER_COUNTS)} c JOIN users u "
            "ON u.user_id IS NOT DISTINCT FROM c.user_id"
        )
        con.execute(
            f"CREATE TEMP TABLE finding_counts AS SELECT * FROM {_files(folders, FINDING_COUNTS)}"
        )
        con.execute(f"CREATE TEMP VIEW anomalies AS SELECT * FROM {_files(folders, ANOMALIES)}")
        con.execute(f"CREATE TEMP VIEW episodes AS SELECT * FROM {_files(folders, EPISODES)}")
        flagged = sum(r.flagged for r in results)
        facts |= {
            "anomalies": anomaly_summary(con, top, flagged),
            "episodes": episode_summary(con, top),
            "users": user_summary(con, top),
        }
        # one thread keeps the rows in order, as `findings.join_parts` writes them
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET threads = 1")
        con.execute(
            f"COPY ({stored_sql(f'SELECT * FROM {_files(folders, ANOMALIES)}')}) TO "
            f"{quote_literal(str(anomalies_out))} (FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()
    return apply_severity_facts(facts, merge_severity(results))
