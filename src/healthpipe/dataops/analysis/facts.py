"""Statistics, anomalies and episodes over a processed Parquet file, in DuckDB SQL.

Returns bounded facts (sizes do not grow with the file): per-metric statistics and histograms,
NEWS2 and BP-category distributions, anomaly counts, the top anomalies, episodes and per-user
risk rows. The full anomaly list is written to a Parquet file next to the analysis.

Memory stays flat as the file grows. The Parquet file is read where it lies, never copied
into a table: `stats` scans it, `readings` numbers its users with their baselines,
`findings` finds the anomalies (and, through `episodes`, the episodes) a group of users at a
time, and `summaries` reduces them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from healthpipe.dataops.analysis.common import AnalysisLimits
from healthpipe.dataops.analysis.day_counts import BaselineRow, apply_history_baselines
from healthpipe.dataops.analysis.findings import (
    decorated_sql,
    find_anomalies,
    join_parts,
    parts_sql,
)
from healthpipe.dataops.analysis.readings import conflicting_rows, readings_sql, users_table
from healthpipe.dataops.analysis.stats import distributions, metric_stats, scan_counts
from healthpipe.dataops.analysis.summaries import anomaly_summary, episode_summary, user_summary
from healthpipe.dataops.engine import EngineLimits, connect, source_literal
from healthpipe.dataops.severe import apply_severity_facts, severity_facts_of

MIN_MEMORY_MB = 64


def statement_limits(limits: EngineLimits) -> EngineLimits:
    """The limits of the analysis's connection: half the stage's DuckDB memory (at least
    MIN_MEMORY_MB). At the whole limit, DuckDB's buffers plus the process's own memory
    passed the stage's memory target (the baselines' windows and joins, 292 MB RSS on the
    2M uniform file); the groups of users stay sized on the stage's limit."""
    return replace(limits, memory_limit_mb=max(MIN_MEMORY_MB, limits.memory_limit_mb // 2))


def analyze_parquet(
    parquet: Path,
    anomalies_out: Path,
    *,
    limits: EngineLimits,
    analysis_limits: AnalysisLimits | None = None,
    rejected_csv: Path | None = None,
    history_baselines: Sequence[BaselineRow] | Callable[[], Sequence[BaselineRow]] = (),
    severity: bool = False,
    on_facts: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Compute the bounded facts of one dataset and write every anomaly to `anomalies_out`.

    With `rejected_csv` (ingest's rejected rows), the rows rejected as `conflicting_reading`
    are scored too: their findings are in the anomaly file, the summaries and episodes,
    flagged `conflicting`; they are not in the statistics, distributions or baselines, which
    describe the valid readings. `history_baselines` replace the file-only baselines of the
    participants with a history (`day_counts.apply_history_baselines`; a callable gives
    them once the file's statistics are scanned, so that they can be worked out meanwhile).
    With `severity`, the severity-first facts too (`severe.severity_facts` on the anomaly
    file gives the same), read from the anomaly parts while they are joined into the file:
    the join runs on one thread, which left the other core idle once the summaries were
    done. `on_facts` hears of the facts twice: the statistics and distributions once the
    file is scanned, then the whole facts as soon as they are final, while the join may
    still be writing the anomaly file (the facts returned are the same dict)."""
    top = analysis_limits or AnalysisLimits()
    src = f"read_parquet({source_literal(parquet)})"
    con = connect(statement_limits(limits))
    try:
        conflicting = conflicting_rows(con, rejected_csv) if rejected_csv is not None else 0
        agg = scan_counts(con, src)
        facts: dict[str, Any] = {**metric_stats(con, agg), **distributions(agg)}
        if on_facts is not None:  # the statistics, while the anomalies are found
            on_facts(dict(facts))
        users_table(con)
        # a callable: the baselines are still being worked out beside the scan above
        apply_history_baselines(
            con, history_baselines() if callable(history_baselines) else history_baselines
        )
        with tempfile.TemporaryDirectory(
            dir=limits.temp_dir or anomalies_out.parent, prefix="anomalies-"
        ) as tmp:
            readings = readings_sql(src, conflicting > 0)
            flagged, parts = find_anomalies(con, readings, anomalies_out, limits, Path(tmp), top)
            if parts:  # the summaries read the parts while they are joined into one file
                con.execute(f"CREATE TEMP VIEW anomalies AS {decorated_sql(parts_sql(parts))}")
            else:
                con.execute(
                    f"CREATE TEMP VIEW anomalies AS SELECT * FROM {parts_sql([anomalies_out])}"
                )
            with ThreadPoolExecutor(max_workers=1) as pool:
                joined = (
                    pool.submit(join_parts, con.cursor(), parts, anomalies_out) if parts else None
                )
                facts |= {
                    "anomalies": anomaly_summary(con, top, flagged),
                    "episodes": episode_summary(con, top),
                    "users": user_summary(con, top),
                }
                if severity:
                    users = [str(u["user_id"]) for u in facts["users"]["top"]]
                    apply_severity_facts(facts, severity_facts_of(con, "anomalies", users))
                if on_facts is not None:  # the facts are final: only the file is left
                    on_facts(facts)
                if joined is not None:
                    joined.result()
    finally:
        con.close()
    return facts
