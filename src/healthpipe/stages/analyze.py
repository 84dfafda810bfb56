"""Analyze: statistics, clinical and baseline anomalies, episodes, analyst insights; stored."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from healthpipe import constants as c
from healthpipe import progress
from healthpipe.dataops.analysis import analyze_parquet
from healthpipe.dataops.analysis.buckets import (
    ParticipantSplit,
    analyze_split,
    processed_rows,
)
from healthpipe.dataops.analysis.day_counts import BaselineRow
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.work_folders import work_folder
from healthpipe.domain.brief import assessment, build_brief, risk_level
from healthpipe.domain.clinical import worst_severity
from healthpipe.domain.documents import (
    Analysis,
    AnalysisComplete,
    AnalysisFacts,
    AnalysisKeys,
    AnalysisSummary,
    AnalystProvenance,
    DataQuality,
    Episode,
    EpisodeCounts,
    Finding,
    FlaggedEpisode,
    FlaggedItem,
    FlaggedUser,
    Grounding,
    HeadlineCounts,
    JsonObject,
    Manifest,
    Participant,
    ProcessingComplete,
    StoredFinding,
    SummaryRows,
    Trends,
    VitalBaseline,
)
from healthpipe.domain.identity import (
    analysis_key,
    anomalies_key,
    ledger_key,
    pseudonym,
)
from healthpipe.events import Event, utc_now
from healthpipe.stages.analyze_history import FileHistory, file_history, save_history
from healthpipe.stages.analyze_phases import (
    _replay,
    analysis_limits,
    fetch,
    split_file,
    write_lake,
)
from healthpipe.stages.base import (
    Ports,
    StageResult,
    facts_ready,
    facts_wanted,
    log_event,
    run_claimed,
    timed,
)
from healthpipe.stages.engine import engine_limits

STAGE = "analyze"
STORE_TOP_ANOMALIES = 10
STORE_FLAGGED_LIMIT = 500
logger = logging.getLogger("healthpipe.analyze")


def analyze(event: Event, ports: Ports) -> StageResult:
    detail = event.detail
    dataset_id = str(detail["dataset_id"])
    correlation_id = str(detail.get("correlation_id") or "")
    return run_claimed(
        ports,
        ledger_key(STAGE, dataset_id),
        STAGE,
        lambda: _analyze(ProcessingComplete.model_validate(detail), ports),
        logger=logger,
        context={"dataset_id": dataset_id},
        save=lambda result: result.info | {"event": result.events[0].detail},
        replay=lambda stored: _replay(stored, correlation_id),
    )


def analyze_again(detail: ProcessingComplete, ports: Ports) -> StageResult:
    """Analyse a dataset once more, outside its claim (the claim of its first analysis stays
    completed, its event is not published): `healthpipe forget` does, after removing a
    participant's rows, so that the stored analysis, its summary and flagged items and the
    anomalies hold only what is left."""
    return _analyze(detail, ports)


def _analyze(detail: ProcessingComplete, ports: Ports) -> StageResult:
    dataset_id = str(detail.dataset_id)
    progress.step("analyze")
    started = time.perf_counter()
    timings: dict[str, int] = {}
    with work_folder(ports.workdir, "analyze") as workdir:
        fetched = fetch(detail, ports, workdir, timings)
        with timed(timings, "lake_ms"):
            write_lake(fetched.processed, workdir, dataset_id, ports)
        anomalies_file = workdir / "anomalies.parquet"
        engine = engine_limits(ports.analyze_settings.engine, workdir)
        split = None
        group_rows = ports.analyze_settings.group_rows
        if group_rows and processed_rows(fetched.processed, engine) > group_rows:
            with timed(timings, "split_ms"):  # docs/scaling.md, "Analyze at that size"
                split = split_file(fetched, workdir / "groups", engine, group_rows)

        # The history phase (group by group; the histograms wait on disk, docs/baselines.md)
        # runs beside the compute, which needs its baselines only after its first scan, and
        # the histograms are then stored on the core the compute's one-thread parts (the
        # anomaly file's ordered write) leave idle. Conclude waits for the save; a failed
        # compute waits for both before its error.
        def history_phase() -> FileHistory:
            with timed(timings, "history_ms"):
                return file_history(
                    fetched.processed,
                    None if split is None else split.readings,
                    dataset_id,
                    engine,
                    ports,
                    workdir / "histograms.pickle",
                )

        def save_phase() -> None:
            done = history.result()
            save_history(done.spool, done.spool.first_day, ports)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="history") as beside:
            history = beside.submit(history_phase)
            saved = beside.submit(save_phase)
            if split is not None:  # the groups' processes use every core: one at a time
                history.result()
            with timed(timings, "compute_ms"):
                found = _facts(
                    fetched.processed,
                    split,
                    anomalies_file,
                    engine,
                    fetched.rejected,
                    lambda: history.result().baselines,
                    ports,
                )
            ports.store.put_file(
                anomalies_key(dataset_id), anomalies_file, "application/vnd.apache.parquet"
            )
            done = history.result()
            return conclude(
                detail,
                fetched.manifest,
                found,
                (done.trends, done.known),
                saved.result,
                timings,
                started,
                ports,
            )


def conclude(
    detail: ProcessingComplete,
    manifest: Manifest,
    found: AnalysisFacts,
    histories: tuple[Trends | None, dict[str, dict[str, VitalBaseline] | None]],
    save: Callable[[], None],
    timings: dict[str, int],
    started: float,
    ports: Ports,
) -> StageResult:
    """After the facts (and the anomaly file stored): this file's histograms stored
    (`save`: done, or waited for), the brief and the analyst, the Analysis document, the
    analysis store, metrics, and Analysis Complete. `histories`: the trends across uploads,
    and by raw id the baselines each participant's findings used (None: no history yet).
    `started`: the stage's start (`time.perf_counter()`)."""
    dataset_id, correlation_id = str(detail.dataset_id), detail.correlation_id
    with timed(timings, "history_save_ms"):
        # a re-analysis replaces this file's histograms, and loading leaves them out
        save()
    trends, known = histories
    quality = DataQuality(
        rows_input=manifest.counts.input,
        rows_valid=manifest.counts.valid,
        rows_rejected=manifest.counts.rejected,
        reasons=manifest.counts.by_reason,
        rules_profile=manifest.rules_profile,
        rejected_key=manifest.outputs.rejected_csv,
    )
    for participant in found.users.top:
        user_id = str(participant.user_id)
        if user_id in known:
            baselines = known[user_id]  # None: no history yet
            participant.has_history = baselines is not None
            if baselines is not None:  # the baselines the findings used (file-only: the SQL's)
                participant.baselines = baselines
    brief = build_brief(found, quality, trends)
    with timed(timings, "analyst_ms"):
        report = ports.analyst.analyze(brief)
    timings["total_ms"] = int((time.perf_counter() - started) * 1000)
    analysis = Analysis(
        dataset_id=dataset_id,
        correlation_id=correlation_id,
        created_at=utc_now().isoformat(timespec="seconds"),
        source=manifest.source,
        data_quality=quality,
        worst_severity=worst_severity(found.anomalies.by_severity),
        **found.fields(),
        analyst=AnalystProvenance.model_validate(report, from_attributes=True),
        usage=report.usage,
        grounding=Grounding.model_validate(report.grounding),
        disclaimer=report.disclaimer,
        insights=report.result.insights,
        recommendations=report.result.recommendations,
        summary=report.result.summary,
        risk_level=risk_level(found, report.result.risk_level),
        assessment=assessment(found),
        keys=AnalysisKeys(
            manifest=detail.manifest_key,
            analysis=analysis_key(dataset_id),
            anomalies=anomalies_key(dataset_id),
        ),
        timings=timings,
    )
    if trends is not None:  # unset without history, as analyses were before
        analysis.trends = trends
    ports.store.put_document(analysis_key(dataset_id), analysis, indent=1)
    secret = ports.analyze_settings.pseudonym_secret
    ports.analyses.save(_summary(analysis, secret), _flagged(analysis, secret))
    _record_metrics(ports, analysis)
    log_event(
        logger,
        "analyzed",
        dataset_id=dataset_id,
        correlation_id=correlation_id,
        anomalies=analysis.anomalies.total,
        episodes=analysis.episodes.total,
        analyst=report.provider,
        fallback=report.fallback_reason,
        duration_ms=timings["total_ms"],
    )
    event_detail = AnalysisComplete(
        correlation_id=correlation_id,
        dataset_id=dataset_id,
        status="success",
        analysis_key=analysis_key(dataset_id),
        manifest_key=detail.manifest_key,
        worst_severity=analysis.worst_severity,
        anomalies=analysis.anomalies.total,
        episodes=analysis.episodes.total,
        risk_level=analysis.risk_level,
    )
    return StageResult(
        "done",
        [Event(c.SOURCE_ANALYZER, c.ANALYSIS_COMPLETE, event_detail.as_json())],
        {
            "dataset_id": dataset_id,
            "anomalies": analysis.anomalies.total,
            "analysis_key": analysis_key(dataset_id),
            "assessment": analysis.assessment.status if analysis.assessment else None,
        },
    )


def _facts(
    processed: Path,
    split: ParticipantSplit | None,
    anomalies_file: Path,
    limits: EngineLimits,
    rejected: Path | None,
    history_baselines: Callable[[], list[BaselineRow]],
    ports: Ports,
) -> AnalysisFacts:
    """The analysis's facts (with the severity facts) and its anomaly file: in groups of
    participants, each on its own process, for a file split by participant (docs/scaling.md,
    "Analyze at that size"), else in this process; the same either way. `facts_ready` hears
    of them once they are final: in this process, while the anomaly file is still written."""
    settings = ports.analyze_settings
    if split is not None:
        grouped = analyze_split(
            split,
            anomalies_file,
            limits=limits,
            workers=settings.workers,
            analysis_limits=analysis_limits(settings),
            history_baselines=history_baselines(),
        )
        found = AnalysisFacts.model_validate(grouped)  # dataops' plain facts, typed here
        facts_ready(found)
        return found
    # `healthpipe run`'s chart worker draws the report's charts as soon as the facts are
    # final, while the anomaly file is still written on one core (nothing without a
    # listener): docs/scaling.md
    facts = analyze_parquet(
        processed,
        anomalies_file,
        limits=limits,
        analysis_limits=analysis_limits(settings),
        rejected_csv=rejected,
        history_baselines=history_baselines,
        severity=True,
        on_facts=(lambda final: facts_ready(AnalysisFacts.model_validate(final)))
        if facts_wanted()
        else None,
    )
    return AnalysisFacts.model_validate(facts)


def _summary(analysis: Analysis, secret: str) -> AnalysisSummary:
    """A bounded summary for the analysis store (full detail stays in the object store).
    Participants appear by pseudonym only."""
    quality = analysis.data_quality
    # as the report counts them: no baseline finding on a clinical reading counted again
    by_severity = analysis.headline_by_severity()
    return AnalysisSummary(
        dataset_id=analysis.dataset_id,
        created_at=analysis.created_at,
        created_epoch=time.time(),
        source_key=analysis.source.key,
        rows=SummaryRows(
            input=quality.rows_input, valid=quality.rows_valid, rejected=quality.rows_rejected
        ),
        reject_reasons=dict(list(quality.reasons.items())[:10]),
        readings=analysis.readings,
        users=analysis.users.total,
        users_flagged=analysis.users.flagged,
        anomalies=HeadlineCounts(
            total=sum(by_severity.values()),
            by_severity=by_severity,
            by_kind=analysis.headline_by_kind(),
        ),
        top_anomalies=[
            StoredFinding.model_validate(_without_raw_id(finding, secret))
            for finding in analysis.anomalies.top[:STORE_TOP_ANOMALIES]
        ],
        episodes=EpisodeCounts(total=analysis.episodes.total, by_kind=analysis.episodes.by_kind),
        worst_severity=analysis.worst_severity,
        risk_level=analysis.risk_level,
        summary=analysis.summary,
        analyst=analysis.analyst,
        usage=analysis.usage,
        keys=analysis.keys,
    )


def _without_raw_id(document: Finding | Participant | Episode, secret: str) -> JsonObject:
    """The item keyed by the participant's pseudonym (`user_key`) instead of the raw id."""
    # a flagged user's stored item stays small: the baselines stay in the analysis JSON
    kept = {k: v for k, v in document.as_json().items() if k not in ("user_id", "baselines")}
    return {"user_key": pseudonym(str(document.user_id), secret), **kept}


def _flagged(analysis: Analysis, secret: str) -> list[FlaggedItem]:
    """One item per flagged user and per episode, keyed by a pseudonym of the user; the raw
    participant id is not stored."""
    items: list[FlaggedItem] = []
    for user in analysis.users.top:
        if user.anomalies:
            item = _without_raw_id(user, secret)
            key = f"user#{item['user_key']}"
            items.append(FlaggedUser.model_validate({"item_key": key, "kind": "user", **item}))
    for index, episode in enumerate(analysis.episodes.items):
        item = _without_raw_id(episode, secret)
        # the episode's own `kind` (its finding kind) takes the place of "episode"
        doc = {"item_key": f"episode#{index:04d}", "kind": "episode", **item}
        items.append(FlaggedEpisode.model_validate(doc))
    return items[:STORE_FLAGGED_LIMIT]


def _record_metrics(ports: Ports, analysis: Analysis) -> None:
    m = ports.metrics
    m.add("AnomaliesDetected", analysis.anomalies.total, stage=STAGE)
    m.add("EpisodesDetected", analysis.episodes.total, stage=STAGE)
    m.add("LLMInputTokens", analysis.usage.input_tokens, stage=STAGE)
    m.add("LLMOutputTokens", analysis.usage.output_tokens, stage=STAGE)
    m.add("LLMCostUSD", analysis.usage.cost_usd, stage=STAGE, unit="None")
    fallback = analysis.analyst is not None and analysis.analyst.fallback_reason
    m.add("AnalystFallbacks", 1 if fallback else 0, stage=STAGE)
    m.add("StageDurationMs", analysis.timings["total_ms"], stage=STAGE, unit="Milliseconds")
