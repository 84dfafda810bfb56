"""A workspace as `healthpipe run` leaves it for the lake, the history store and the analyses,
without the report: ingest and analyze, the real stages on the local runtime, one file after
another, and no notify.

For the tests of what `run` stored or of how ingest and analyze run (`query`, `history`,
the analyze stage's memory): notify only reads the analysis and writes the report, its four
charts and the email (about 2.5 CPU-s a file, most of a small file's run), and none of that
is what they assert. `healthpipe run` itself, notify included, is tested in
tests/e2e/test_cli_run*.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.orchestration.runs import upload_event, upload_raw
from healthpipe.stages.analyze import analyze
from healthpipe.stages.ingest import ingest


def ingest_and_analyze(workspace: Path, files: list[Path]) -> list[dict[str, Any]]:
    """Each file through ingest then analyze, in order, into `workspace` with the settings
    `healthpipe run -w workspace` reads; per file what `run --json` reports of those stages
    (source, dataset_id, status, rows, anomalies, assessment)."""
    runtime = build_local(load_settings({"workspace": workspace}))
    outcomes: list[dict[str, Any]] = []
    try:
        for source in files:
            ingested = ingest(upload_event(runtime, upload_raw(runtime, source)), runtime.ports)
            assert ingested.outcome == "done", ingested.info
            (processed,) = ingested.events
            analysed = analyze(processed, runtime.ports)
            assert analysed.outcome == "done", analysed.info
            outcomes.append(
                {
                    "source": str(source),
                    "dataset_id": ingested.info["dataset_id"],
                    "status": "processed",
                    "rows": ingested.info["rows"],
                    "anomalies": int(analysed.info["anomalies"]),
                    "assessment": analysed.info.get("assessment"),
                }
            )
    finally:
        runtime.close()
    return outcomes
