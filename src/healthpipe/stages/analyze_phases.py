"""The analyze stage's phases before its facts, shared by its two executors (the analyze stage,
`stages/analyze.py`, and the grouped analysis on AWS, `stages/grouped_analyze.py`): the
inputs fetched, the lake written, the file split in groups of participants (the histories
are `stages/analyze_history.py`'s); and the replay of a finished analysis's event. Nothing
here writes the analysis store (the grouped analysis's Prepare only reads it: tests/infra
scans each function's modules)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthpipe import constants as c
from healthpipe.dataops.analysis import CONFLICTING_REASON as CONFLICTING
from healthpipe.dataops.analysis import AnalysisLimits
from healthpipe.dataops.analysis.buckets import ParticipantSplit, split_participants
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.lake_write import write_lake_parts
from healthpipe.domain.documents import Manifest, ProcessingComplete
from healthpipe.domain.identity import lake_readings_key, participant_bucket
from healthpipe.events import Event
from healthpipe.stages.base import Ports, timed
from healthpipe.stages.engine import engine_limits
from healthpipe.stages.settings import AnalyzeSettings


def analysis_limits(settings: AnalyzeSettings) -> AnalysisLimits:
    """What the analysis lists and its clinical context, from the stage's settings."""
    return AnalysisLimits(
        top_users=settings.top_users,
        episode_gap_seconds=settings.episode_gap_minutes * 60.0,
        activity_steps_above=settings.activity_steps_above,
    )


def _replay(stored: dict[str, Any], correlation_id: str) -> list[Event]:
    """Re-emit the completion event of a finished analysis (its downstream is idempotent)."""
    detail = stored.get("event")
    if not detail:
        return []
    return [
        Event(c.SOURCE_ANALYZER, c.ANALYSIS_COMPLETE, {**detail, "correlation_id": correlation_id})
    ]


def write_lake(processed: Path, workdir: Path, dataset_id: str, ports: Ports) -> None:
    """The file's valid readings into the lake, one object per participant bucket and
    reading day (`lake/readings/pb=NN/dt=DAY/<dataset_id>.parquet`, docs/lake.md): the
    keys hold the bucket, never an id; a re-analysis overwrites the same keys."""
    secret = ports.analyze_settings.pseudonym_secret
    parts = write_lake_parts(
        processed,
        workdir / "lake",
        lambda user_id: participant_bucket(user_id, secret),
        engine_limits(ports.analyze_settings.engine, workdir),
    )
    # one object per part (2M rows: 192); S3 sends several at once (ObjectStore.put_files)
    ports.store.put_files(
        [(lake_readings_key(part.bucket, part.day, dataset_id), part.path) for part in parts],
        "application/vnd.apache.parquet",
        consume=True,
    )


@dataclass
class Fetched:
    """The analysis's inputs on local disk: the manifest, the processed file and (when it
    holds conflicting readings) the rejected CSV."""

    manifest: Manifest
    processed: Path
    rejected: Path | None


def fetch(
    detail: ProcessingComplete, ports: Ports, workdir: Path, timings: dict[str, int]
) -> Fetched:
    """The manifest, and the processed file (and rejected CSV) materialized in `workdir`."""
    manifest = ports.store.get_document(detail.manifest_key, Manifest)
    with timed(timings, "fetch_ms"):
        local = ports.store.materialize(detail.processed_key, workdir)
        # conflicting readings (rejected) are scored too, flagged `conflicting`
        rejected_key = manifest.outputs.rejected_csv
        conflicting = manifest.counts.by_reason.get(CONFLICTING)
        rejected = (
            ports.store.materialize(str(rejected_key), workdir).path
            if rejected_key and conflicting
            else None
        )
    return Fetched(manifest, local.path, rejected)


def split_file(
    fetched: Fetched, work: Path, engine: EngineLimits, group_rows: int
) -> ParticipantSplit:
    """The fetched file split in groups of participants of at most `group_rows` readings."""
    return split_participants(
        fetched.processed,
        work,
        limits=engine,
        group_rows=group_rows,
        rejected_csv=fetched.rejected,
    )
