"""`healthpipe run` on a file above `chunked_threshold_mb`: the chunked engine (`--workers 2`)
ingests it with the single-file path's counts and outputs, under the same keys and manifest.
The file is one chunk (4 MB at least), so it runs in this process; the process pool is
covered by tests/unit/test_chunked_identity.py."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.dataops.chunked import validate_chunked
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.domain.identity import DatasetKeys, manifest_key
from healthpipe.stages import ingest
from healthpipe.stages.ingest import MB
from healthpipe.synthetic import SyntheticSpec, generate_csv

pytestmark = pytest.mark.clock  # the chunked path reads the stage's clock on its own


def _parquet_rows(path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)"
        ).fetchall()


def test_a_file_above_the_threshold_is_chunked_with_the_single_paths_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a file with repeats and a malformed record
    source = generate_csv(
        SyntheticSpec(rows=400, users=5, seed=7, duplicate_rate=0.05), tmp_path / "v.csv"
    )
    with source.open("a", encoding="utf-8") as handle:
        handle.write("2025-11-02T00:00:00Z,u9,70\n")
    calls = spy_on_the_chunked_engine(monkeypatch)
    monkeypatch.setenv("HEALTHPIPE_CHUNKED_THRESHOLD_MB", "0")
    # WHEN it is run above a 0 MB threshold on 2 workers
    # THEN the chunked engine ran, and wrote what the single-file path writes
    run_and_compare_with_the_single_path(source, tmp_path)
    assert calls == [2]


def test_a_gzip_is_routed_by_the_size_the_engine_reads_not_its_compressed_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a gzip of 1.1 MiB of CSV in about 0.2 MiB, and a 1 MiB threshold
    source = generate_csv(
        SyntheticSpec(rows=22_000, users=5, seed=11, duplicate_rate=0.01), tmp_path / "v.csv.gz"
    )
    with gzip.open(source, "rb") as handle:
        uncompressed = len(handle.read())
    assert source.stat().st_size < MB < uncompressed
    calls = spy_on_the_chunked_engine(monkeypatch)
    monkeypatch.setenv("HEALTHPIPE_CHUNKED_THRESHOLD_MB", "1")
    # WHEN it is run
    # THEN the chunked engine ran (the CSV it reads is above the threshold), with the single
    # path's outputs
    run_and_compare_with_the_single_path(source, tmp_path)
    assert calls == [2]


def spy_on_the_chunked_engine(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The workers of each call of the chunked engine, which still runs."""
    calls: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["workers"])
        return validate_chunked(*args, **kwargs)

    monkeypatch.setattr(ingest, "validate_chunked", spy)
    return calls


def run_and_compare_with_the_single_path(source: Path, tmp_path: Path) -> None:
    """`healthpipe run --workers 2` of `source`: its counts, manifest and outputs equal the
    single-file path's (`validate_file`), byte for byte."""
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        app, ["run", str(source), "--json", "--workspace", str(workspace), "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["files"]
    (tmp_path / "single").mkdir()
    split = SplitPaths(*(tmp_path / "single" / n for n in ("p.csv", "p.parquet", "r.csv")))
    single = validate_file(
        source,
        read_header(source),
        load_profile("plausible"),
        split,
        now_iso=ingest.utc_now().isoformat(),  # the stage's clock (tests/conftest.py)
        limits=EngineLimits(temp_dir=tmp_path / "tmp"),
    )
    bucket = workspace / "bucket"
    manifest = json.loads((bucket / manifest_key(run["dataset_id"])).read_text())
    stem = source.name.split(".", 1)[0]
    keys = DatasetKeys(run["dataset_id"], stem, manifest["ingested_at"][:10])
    assert manifest["outputs"] == {
        "processed_csv": keys.processed_csv,
        "processed_parquet": keys.processed_parquet,
        "rejected_csv": keys.rejected_csv,
    }
    assert manifest["counts"] == {
        "input": single.rows_input,
        "valid": single.rows_valid,
        "rejected": single.rows_rejected,
        "by_reason": single.reasons,
    }
    assert (manifest["users"], manifest["columns"]) == (single.users, single.columns)
    assert run["rows"] == {k: manifest["counts"][k] for k in ("input", "valid", "rejected")}
    assert (bucket / keys.processed_csv).read_bytes() == split.processed_csv.read_bytes()
    assert (bucket / keys.rejected_csv).read_bytes() == split.rejected_csv.read_bytes()
    assert _parquet_rows(bucket / keys.processed_parquet) == _parquet_rows(split.processed_parquet)
