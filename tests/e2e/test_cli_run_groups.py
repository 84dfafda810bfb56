"""`healthpipe run` on a file of more rows than `analyze_group_rows`: the analysis runs in
groups of participants on a pool of processes (`--workers 2`) and stores the single path's
anomaly file and facts. Equivalence over many shapes of groups is in
tests/unit/test_analysis_groups.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.dataops.analysis import analyze_parquet, buckets
from healthpipe.dataops.engine import EngineLimits
from healthpipe.domain.identity import analysis_key, anomalies_key, manifest_key
from healthpipe.stages import analyze
from healthpipe.synthetic import SyntheticSpec, generate_csv


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def test_a_file_above_the_group_rows_is_analysed_in_groups_with_the_same_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a file of 600 readings of 6 participants, and groups of at most 250 readings
    source = generate_csv(SyntheticSpec(rows=600, users=6, seed=11), tmp_path / "v.csv")
    calls: list[tuple[int, int]] = []

    def spy(split: buckets.ParticipantSplit, *args: Any, **kwargs: Any) -> Any:
        calls.append((len(split.readings), kwargs["workers"]))
        return buckets.analyze_split(split, *args, **kwargs)

    monkeypatch.setattr(analyze, "analyze_split", spy)
    monkeypatch.setenv("HEALTHPIPE_ANALYZE_GROUP_ROWS", "250")
    # WHEN it is run on 2 workers
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        app, ["run", str(source), "--json", "--workspace", str(workspace), "--workers", "2"]
    )
    # THEN the analysis ran in groups on the pool, and stored what the single path finds in
    # the same processed file
    assert result.exit_code == 0, result.output
    assert calls == [(3, 2)]  # 3 groups of 6 participants (about 100 readings each)
    (run,) = json.loads(result.stdout)["files"]
    bucket = workspace / "bucket"
    manifest = json.loads((bucket / manifest_key(run["dataset_id"])).read_text())
    processed = bucket / manifest["outputs"]["processed_parquet"]
    single = tmp_path / "single.parquet"
    limits = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "t")
    facts = analyze_parquet(processed, single, limits=limits, severity=True)
    assert _rows(bucket / anomalies_key(run["dataset_id"])) == _rows(single)
    stored = json.loads((bucket / analysis_key(run["dataset_id"])).read_text())
    assert stored["anomalies"]["total"] == facts["anomalies"]["total"] > 0
    assert stored["anomalies"]["by_kind"] == facts["anomalies"]["by_kind"]
    assert stored["episodes"]["total"] == facts["episodes"]["total"]
    assert [u["user_id"] for u in stored["users"]["top"]] == [
        u["user_id"] for u in facts["users"]["top"]
    ]
    assert stored["red_scores"] == facts["red_scores"]
