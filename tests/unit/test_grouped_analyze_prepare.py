"""The grouped analysis's Prepare on the local runtime's ports (a folder store lends its own
files: Prepare must not remove the processed file it was lent), its claim against another
execution, and the tagged JSON that carries the aggregates and severity facts to Merge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.domain.documents import ProcessingComplete
from healthpipe.events import object_created
from healthpipe.stages.grouped_analyze import prepare, tagged, untagged
from healthpipe.stages.ingest import ingest
from healthpipe.synthetic import SyntheticSpec, generate_csv


def test_tagged_json_gives_back_the_values_and_their_types() -> None:
    value = {
        "first": datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
        "naive": datetime(2025, 3, 1, 8, 30, 15, 250000),
        "day": date(2025, 3, 1),
        "temp": Decimal("36.60"),
        "scores": [(3, "stage 1", True, 12), (None, None, False, 1)],
        "mean": 71.23456789012345,
        "users": {"u 1": {"n": 2}},
    }
    assert untagged(tagged(value)) == value
    assert type(untagged(tagged(value))["scores"][0]) is tuple


def test_prepare_keeps_the_store_s_processed_file_and_one_execution_holds_the_claim(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    runtime = build_local(load_settings({"workspace": workspace, "retry_base_seconds": 0.0}))
    try:
        source = generate_csv(SyntheticSpec(rows=120, users=3, seed=5), tmp_path / "in.csv")
        runtime.store.put_file("raw/in.csv", source, "text/csv")
        ingested = ingest(
            object_created(runtime.store.bucket, "raw/in.csv", None, None), runtime.ports
        )
        detail = ProcessingComplete.model_validate(ingested.events[0].detail)
        ports = dataclasses.replace(runtime.ports, workdir=tmp_path / "lambda")
        # WHEN Prepare runs on the folder store (which lends its own files, not copies)
        result = prepare(detail, "execution-1", 50, ports)
        # THEN the file is split in groups, and the processed file is still in the store
        job = result.info["job"]
        assert job.outcome == "prepared" and job.groups >= 2
        assert runtime.store.exists(detail.processed_key)
        # AND another execution finds the claim held: it skips, publishing nothing
        other = prepare(detail, "execution-2", 50, ports)
        assert other.info["job"].outcome == "skipped" and other.events == []
    finally:
        runtime.close()
