"""Merge, the grouped analysis's last state on AWS (see `stages/grouped_analyze.py` for the
others and the keys under work/analyze/): the groups' facts merged with the local
executor's merge (`buckets.merge_groups`), then the analyze stage's own end
(`analyze.conclude`). A module of its own: only this state writes the analysis store, and
tests/infra holds each function's grants to what its code's modules call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from healthpipe.dataops.analysis.buckets import GroupResult, merge_groups
from healthpipe.domain.documents import AnalysisFacts, DayHistogram, Manifest
from healthpipe.domain.documents.analyze_job import (
    AnalyzeJob,
    AnalyzeStep,
    GroupAnalyzed,
    Merged,
    PreparedAnalysis,
)
from healthpipe.domain.identity import analysis_key, anomalies_key, ledger_key
from healthpipe.stages import analyze as single
from healthpipe.stages.analyze_history import save_history
from healthpipe.stages.analyze_phases import analysis_limits
from healthpipe.stages.base import ExecutionClaim, Ports, StageResult, timed
from healthpipe.stages.engine import engine_limits
from healthpipe.stages.grouped_analyze import (
    GROUP_FILES,
    PARQUET,
    STAGE,
    group_prefix,
    histograms_key,
    prepared_key,
    untagged,
)


# --- Merge ---------------------------------------------------------------------------------
def merge(step: AnalyzeStep, ports: Ports) -> StageResult:
    """The groups' facts merged (`buckets.merge_groups`: the file's facts and its anomaly
    file, the groups' in group order), the anomaly file stored, then the rest of the
    analyze stage (`analyze.conclude`), the claim completed as the analyzer completes it."""
    job, workdir, store = step.job, ports.workdir, ports.store
    prepared = store.get_document(prepared_key(job), PreparedAnalysis)
    timings = dict(job.timings)
    folders: list[Path] = []
    results: list[GroupResult] = []
    with timed(timings, "fetch_groups_ms"):
        for index in range(job.groups):
            folder = workdir / f"group-{index:05d}"
            prefix = group_prefix(job, index)
            for name in GROUP_FILES:
                store.materialize(f"{prefix}out/{name}", folder)
            done = store.get_document(f"{prefix}result.json", GroupAnalyzed)
            severity = untagged(done.severity)
            results.append(GroupResult(done.index, done.flagged, severity, dict(done.first_high)))
            folders.append(folder)
    settings = ports.analyze_settings
    anomalies_file = workdir / "anomalies.parquet"
    with timed(timings, "compute_ms"):
        facts = merge_groups(
            untagged(prepared.aggregates),
            folders,
            results,
            anomalies_file,
            engine_limits(settings.engine, workdir),
            analysis_limits(settings),
        )
        found = AnalysisFacts.model_validate(facts)  # dataops' plain facts, typed here
    store.put_file(anomalies_key(job.dataset_id), anomalies_file, PARQUET, consume=True)
    manifest = store.get_document(job.detail.manifest_key, Manifest)
    # the stage's clock started in Prepare
    started = time.perf_counter() - (time.time() - prepared.started_epoch)
    result = single.conclude(
        job.detail,
        manifest,
        found,
        (prepared.trends, prepared.known),
        lambda: _save_history(job, prepared, ports),
        timings,
        started,
        ports,
    )
    stored = result.info | {"event": result.events[0].detail}
    ExecutionClaim(ports.ledger, ledger_key(STAGE, job.dataset_id), job.claim_owner).complete(
        stored
    )
    merged = Merged(
        dataset_id=job.dataset_id,
        analysis_key=analysis_key(job.dataset_id),
        anomalies=int(result.info["anomalies"]),
    )
    return StageResult(result.outcome, result.events, result.info | {"merged": merged})


def _save_history(job: AnalyzeJob, prepared: PreparedAnalysis, ports: Ports) -> None:
    """This file's histograms (Prepare's, read back one at a time) stored by
    `analyze_history.save_history`, as the analyze stage stores its spool's."""
    if not prepared.histograms or prepared.history_start is None:
        return
    path = ports.store.materialize(histograms_key(job), ports.workdir / "histograms").path

    def read() -> Iterator[DayHistogram]:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                yield DayHistogram.model_validate_json(line)

    save_history(read(), prepared.history_start, ports)


__all__ = ["merge"]
