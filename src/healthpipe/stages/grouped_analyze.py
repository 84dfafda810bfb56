"""The analysis of a large processed file on AWS, in groups of participants, one function per
state of the Step Functions state machine
(infra/terraform/statemachine/grouped_analyze.asl.json.tftpl; docs/deploy.md "Large files"):
the local executor's functions (`dataops/analysis/buckets.py`: `split_participants`,
`analyze_group`, `merge_groups`) and the analyze stage's own phases
(`stages/analyze_phases.py`: `fetch`, `write_lake`, `split_file`, `histories`; and
`analyze.conclude`, called by Merge in `stages/grouped_merge.py`), each run by its own
Lambda. What a state leaves for the next is in the bucket under `work/analyze/<dataset_id>/`;
what the state machine carries is the small `AnalyzeJob`.

The analysis, the anomaly file, the analysis store, the histories, the ledger claim and
the event are those of `stages.analyze` for the same file: Prepare claims
`analyze:<dataset_id>` for the execution (Merge completes it; after a failure the failure
branch's Release gives it up), Merge publishes Analysis Complete.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from healthpipe import constants as c
from healthpipe.dataops.analysis.buckets import (
    ANOMALIES,
    EPISODES,
    FINDING_COUNTS,
    USER_COUNTS,
    USERS,
    VALUE_COUNTS,
    GroupJob,
    ParticipantSplit,
    analyze_group,
)
from healthpipe.dataops.analysis.common import GROUP_PARQUET
from healthpipe.domain.documents import (
    ProcessingComplete,
)
from healthpipe.domain.documents.analyze_job import (
    AnalysisGroup,
    AnalyzeJob,
    AnalyzeReleased,
    AnalyzeReleaseRequest,
    GroupAnalyzed,
    GroupStep,
    PreparedAnalysis,
)
from healthpipe.domain.identity import ledger_key
from healthpipe.stages import analyze_phases as single
from healthpipe.stages.analyze_history import file_history
from healthpipe.stages.base import ExecutionClaim, Ports, StageResult, log_event, timed
from healthpipe.stages.engine import engine_limits

STAGE = "analyze"  # the same claim, metrics and events as the single analyzer
PARQUET = "application/vnd.apache.parquet"
WORK = f"{c.WORK_PREFIX}analyze/"
GROUP_FILES = (ANOMALIES, EPISODES, USERS, USER_COUNTS, FINDING_COUNTS, VALUE_COUNTS)
logger = logging.getLogger("healthpipe.analyze.grouped")


# --- keys under work/analyze/<dataset_id>/ ---------------------------------------------------
def group_prefix(job: AnalyzeJob, index: int) -> str:
    return f"{job.work_prefix}group-{index:05d}/"


def prepared_key(job: AnalyzeJob) -> str:
    return f"{job.work_prefix}prepared.json"


def histograms_key(job: AnalyzeJob) -> str:
    return f"{job.work_prefix}histograms.jsonl"


# --- the aggregates and severity facts as JSON, their types kept -----------------------------
def tagged(value: Any) -> Any:
    """`value` (DuckDB's Python values: datetimes, dates, decimals, tuples) as JSON that
    `untagged` gives back equal, types included."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [tagged(v) for v in value]}
    if isinstance(value, list):
        return [tagged(v) for v in value]
    if isinstance(value, dict):
        return {str(k): tagged(v) for k, v in value.items()}
    return value


def untagged(value: Any) -> Any:
    if isinstance(value, list):
        return [untagged(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$datetime":
                return datetime.fromisoformat(inner)
            if tag == "$date":
                return date.fromisoformat(inner)
            if tag == "$decimal":
                return Decimal(inner)
            if tag == "$tuple":
                return tuple(untagged(v) for v in inner)
        return {k: untagged(v) for k, v in value.items()}
    return value


# --- Prepare -------------------------------------------------------------------------------
def prepare(
    detail: ProcessingComplete, execution: str, group_rows: int, ports: Ports
) -> StageResult:
    """Claim the analysis of the file for `execution` (as `stages.analyze` claims it: a
    finished analysis is replayed, one in progress elsewhere skipped), then fetch the
    processed file, write the lake, split it in groups of at most `group_rows` readings,
    build the participants' histories, and write the groups, the history baselines of each,
    the histograms and what Merge needs to work/."""
    dataset_id = str(detail.dataset_id)
    job = AnalyzeJob(
        outcome="prepared",
        bucket=ports.store.bucket,
        dataset_id=dataset_id,
        correlation_id=detail.correlation_id,
        claim_owner=execution,
        detail=detail,
        work_prefix=f"{WORK}{dataset_id}/",
    )
    claim = ExecutionClaim(ports.ledger, ledger_key(STAGE, dataset_id), execution)
    record = claim.take()  # None: ours (taken now, or a retry of this execution's Prepare)
    if record is not None:
        done = record.status == "completed"
        log_event(
            logger,
            "duplicate delivery skipped",
            claim=record.status,
            dataset_id=dataset_id,
            correlation_id=detail.correlation_id,
        )
        events = single._replay(record.result, detail.correlation_id) if done else []
        return StageResult(
            "skipped", events, {"job": job.model_copy(update={"outcome": "skipped"})}
        )
    try:
        return _prepare_claimed(job, group_rows, ports)
    except Exception:
        claim.release()
        raise


def _prepare_claimed(job: AnalyzeJob, group_rows: int, ports: Ports) -> StageResult:
    started = time.time()
    timings: dict[str, int] = {}
    workdir, store = ports.workdir, ports.store
    workdir.mkdir(parents=True, exist_ok=True)
    fetched = single.fetch(job.detail, ports, workdir, timings)
    with timed(timings, "lake_ms"):
        single.write_lake(fetched.processed, workdir, job.dataset_id, ports)
    engine = engine_limits(ports.analyze_settings.engine, workdir)
    with timed(timings, "split_ms"):
        split = single.split_file(fetched, workdir / "groups", engine, group_rows)
    with timed(timings, "history_ms"):
        # group by group, as the analyze stage does; the histograms wait on disk
        history = file_history(
            fetched.processed,
            split.readings,
            job.dataset_id,
            engine,
            ports,
            workdir / "histograms.pickle",
        )
    if fetched.processed.is_relative_to(workdir):  # our copy (a folder store lends its own)
        fetched.processed.unlink()  # the groups hold its rows
    groups = _put_groups(job, split, history.baselines, ports)
    conflicting_key = None
    if split.conflicting is not None:
        conflicting_key = f"{job.work_prefix}conflicting.parquet"
        store.put_file(conflicting_key, split.conflicting, PARQUET, consume=True)
    # the histograms for Merge to save, as JSON lines (one document each, read back one at
    # a time): the spool's own pickles are for its process only
    histogram_file = workdir / "histograms.jsonl"
    with histogram_file.open("w", encoding="utf-8") as out:
        for histogram in history.spool:
            out.write(histogram.dumps() + "\n")
    store.put_file(histograms_key(job), histogram_file, "application/x-ndjson", consume=True)
    prepared = PreparedAnalysis(
        aggregates=tagged(split.agg),
        trends=history.trends,
        known=history.known,
        histograms=history.spool.count,
        history_start=history.spool.first_day,
        started_epoch=started,
    )
    store.put_document(prepared_key(job), prepared)
    groups_key = f"{job.work_prefix}groups.json"
    store.put_bytes(groups_key, json.dumps([g.as_json() for g in groups]).encode())
    planned = job.model_copy(
        update={
            "groups_key": groups_key,
            "groups": len(groups),
            "conflicting_key": conflicting_key,
            "timings": timings,
        }
    )
    log_event(
        logger,
        "grouped analysis prepared",
        dataset_id=job.dataset_id,
        correlation_id=job.correlation_id,
        groups=len(groups),
    )
    return StageResult("done", [], {"job": planned})


def _put_groups(
    job: AnalyzeJob, split: ParticipantSplit, baselines: list[Any], ports: Ports
) -> list[AnalysisGroup]:
    """Each group's rows and its participants' history baselines to work/."""
    groups = []
    for index, readings in enumerate(split.readings):
        prefix = group_prefix(job, index)
        keys = []
        for number, path in enumerate(sorted(readings.parent.glob(readings.name))):
            key = f"{prefix}readings/{number:05d}.parquet"
            ports.store.put_file(key, path, PARQUET, consume=True)
            keys.append(key)
        members = split.members[index]
        mine = [list(b) for b in baselines if b[0] in members]
        ports.store.put_bytes(f"{prefix}baselines.json", json.dumps(mine).encode())
        groups.append(AnalysisGroup(index=index, readings=keys))
    return groups


# --- Map: one group ------------------------------------------------------------------------
def group(step: GroupStep, ports: Ports) -> GroupAnalyzed:
    """One group's analysis (`buckets.analyze_group`, as the local pool runs it), its files
    and its result to work/."""
    job, item, workdir, store = step.job, step.group, ports.workdir, ports.store
    prefix = group_prefix(job, item.index)
    readings = workdir / "readings"
    for key in item.readings:
        store.materialize(key, readings)
    conflicting = None
    if job.conflicting_key:
        conflicting = store.materialize(job.conflicting_key, workdir / "conflicting").path
    baselines = tuple(tuple(b) for b in json.loads(store.get_bytes(f"{prefix}baselines.json")))
    settings = ports.analyze_settings
    folder = workdir / "out"
    result = analyze_group(
        GroupJob(
            index=item.index,
            readings=readings / GROUP_PARQUET,
            conflicting=conflicting,
            folder=folder,
            limits=engine_limits(settings.engine, workdir),
            analysis=single.analysis_limits(settings),
            baselines=baselines,  # BaselineRow tuples, from JSON
        )
    )
    for name in GROUP_FILES:
        store.put_file(f"{prefix}out/{name}", folder / name, PARQUET, consume=True)
    analyzed = GroupAnalyzed(
        index=result.index,
        flagged=result.flagged,
        severity=tagged(result.severity),
        first_high=result.first_high,
    )
    store.put_document(f"{prefix}result.json", analyzed)
    log_event(logger, "group analysed", dataset_id=job.dataset_id, group=item.index)
    return analyzed.model_copy(update={"severity": {}, "first_high": {}})


# --- Release: the failure branch -----------------------------------------------------------
def release(request: AnalyzeReleaseRequest, ports: Ports) -> AnalyzeReleased:
    """Give up the failed execution's in-progress claim on the analysis (only the claim
    `request.execution` holds; idempotent), so that the file can be analysed again at once."""
    job = request.job
    key = ledger_key(STAGE, job.dataset_id)
    record = ports.ledger.get(key)
    held = (
        record is not None and record.status == "in_progress" and record.owner == request.execution
    )
    ExecutionClaim(ports.ledger, key, request.execution).release()
    log_event(
        logger,
        "grouped analysis claim released" if held else "grouped analysis claim not held",
        dataset_id=job.dataset_id,
        correlation_id=job.correlation_id,
    )
    return AnalyzeReleased(outcome="released" if held else "not_held", dataset_id=job.dataset_id)


__all__ = ["group", "prepare", "release"]
