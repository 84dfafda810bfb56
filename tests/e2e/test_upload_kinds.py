"""Uploads of every kind under raw/ (local runtime): `.csv` and `.csv.gz` in any case are
ingested, a gzip named `.csv` is read as gzip (by its magic bytes) on the single path and on
the chunked engine, and any other file dropped under raw/ is rejected with a failure record.

DuckDB's own `compression = 'auto'` decides by the name (a gzip named `.csv` is read as text
and fails as "not utf-8"), which is why each engine passes the compression it found in the
file's first bytes (`dataops/header.py::is_gzip`, `dataops/chunked/plan.py`).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthpipe.bootstrap import build_local
from healthpipe.cli import app
from healthpipe.config import load_settings
from healthpipe.dataops.chunked import validate_chunked
from healthpipe.domain.identity import correlation_id_for
from healthpipe.events import object_created
from healthpipe.orchestration.local import Dispatcher
from healthpipe.orchestration.runs import FileOutcome, collect
from healthpipe.stages import ingest
from healthpipe.synthetic import SyntheticSpec, generate_csv

pytestmark = pytest.mark.clock  # the chunked path reads the stage's clock on its own

ROWS = 300


def _source(tmp_path: Path) -> Path:
    return generate_csv(SyntheticSpec(rows=ROWS, users=4, seed=5), tmp_path / "src" / "v.csv")


def _named(source: Path, name: str, *, gzipped: bool) -> Path:
    target = source.parent / name
    if gzipped:
        with source.open("rb") as plain, gzip.open(target, "wb") as packed:
            shutil.copyfileobj(plain, packed)
    else:
        shutil.copy(source, target)
    return target


def _run(files: list[Path], workspace: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["run", *map(str, files), "--json", "--workspace", str(workspace)]
    )
    assert result.exit_code == 0, result.output
    runs: list[dict[str, Any]] = json.loads(result.stdout)["files"]
    return runs


@pytest.mark.parametrize(
    ("name", "gzipped"),
    [
        ("export.Csv", False),
        ("EXPORT.CSV", False),
        ("vitals.csv.GZ", True),
        ("vitals.Csv.Gz", True),
        ("packed.csv", True),  # a gzip named .csv
        ("packed.Csv", True),
    ],
)
def test_run_ingests_every_case_of_a_supported_kind(
    tmp_path: Path, name: str, gzipped: bool
) -> None:
    # GIVEN a vitals CSV named `name`, gzip-compressed or not
    upload = _named(_source(tmp_path), name, gzipped=gzipped)
    # WHEN it is run
    (run,) = _run([upload], tmp_path / "ws")
    # THEN it is ingested whole (before, `.Csv` matched no route and nothing happened)
    assert run["status"] == "processed", run
    assert run["rows"]["input"] == ROWS
    assert run["error"] is None


def test_a_gzip_named_csv_is_read_as_gzip_by_the_chunked_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a gzip named .Csv, and a threshold that sends every file to the chunked engine
    upload = _named(_source(tmp_path), "packed.Csv", gzipped=True)
    calls: list[Path] = []

    def spy(path: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return validate_chunked(path, *args, **kwargs)

    monkeypatch.setattr(ingest, "validate_chunked", spy)
    monkeypatch.setenv("HEALTHPIPE_CHUNKED_THRESHOLD_MB", "0")
    # WHEN it is run
    (run,) = _run([upload], tmp_path / "ws")
    # THEN the chunked engine read it as gzip: every record counted, none rejected as garbage
    assert len(calls) == 1
    assert run["status"] == "processed", run
    assert run["rows"]["input"] == ROWS
    plain = _run([_named(_source(tmp_path / "p"), "plain.csv", gzipped=False)], tmp_path / "ws2")
    assert run["rows"] == plain[0]["rows"]


def test_a_file_of_another_kind_under_raw_is_rejected_with_a_failure_record(
    tmp_path: Path,
) -> None:
    # GIVEN a workspace whose raw/ holds a .txt (dropped there, as S3 would receive it)
    runtime = build_local(load_settings({"workspace": tmp_path / "ws", "retry_base_seconds": 0.0}))
    try:
        key = "raw/2026/notes.txt"
        path = runtime.store.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("participant u1 felt dizzy\n")
        version = runtime.store.version_of(path)
        event = object_created(runtime.store.bucket, key, version, path.stat().st_size)
        # WHEN its upload is dispatched
        dispatcher = Dispatcher(runtime.ports, runtime.bus)
        dispatcher.submit(event)
        dispatcher.drain()
        # THEN ingest rejects it in one line naming the type, with no row value
        correlation_id = correlation_id_for(runtime.store.bucket, key, version)
        outcome = collect(runtime, event.id, correlation_id, FileOutcome(source=key))
        assert outcome.status == "rejected"
        assert outcome.error == "unsupported file type: .txt (expected .csv or .csv.gz)"
        # AND a ledger record and a Data Processing Failed (delivered to the alert route)
        record = runtime.ports.ledger.get(f"ingest:object:{correlation_id}")
        assert record is not None and record.status == "completed"
        detail = record.result["event"]
        assert (detail["status"], detail["error_code"]) == ("rejected", "unsupported_file_type")
        assert detail["source_key"] == key and "dizzy" not in json.dumps(detail)
        deliveries = runtime.bus.deliveries_for(correlation_id)
        failed = [d for d in deliveries if d["detail_type"] == "Data Processing Failed"]
        assert [(d["target"], d["status"]) for d in failed] == [("alert", "delivered")]
        # AND the object stays where it was, nothing else written
        assert path.read_text() == "participant u1 felt dizzy\n"
        bucket = runtime.store.root
        assert not (bucket / "processed").exists() or not any((bucket / "processed").rglob("*"))
        # AND the same upload delivered again replays the failure from its record
        again = object_created(runtime.store.bucket, key, version, path.stat().st_size)
        dispatcher.submit(again)
        dispatcher.drain()
        replayed = runtime.bus.delivery_of(again.id, "ingest")
        assert replayed is not None and replayed["outcome"] == "skipped"
        assert runtime.ports.ledger.get(f"ingest:object:{correlation_id}") == record
        failures = [
            d
            for d in runtime.bus.deliveries_for(correlation_id)
            if d["detail_type"] == "Data Processing Failed"
        ]
        assert len(failures) == 2  # the failure is told again, as a completed ingest's is
    finally:
        runtime.close()
