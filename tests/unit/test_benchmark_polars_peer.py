"""The plain-polars peer (benchmarks/peers/polars_ingest.py) applies healthpipe's default
rules: on a generated file with every kind of bad row and repeated readings, and on a file in
the original's uniform style, it finds the same valid and rejected rows, the same reasons, and
writes the same processed rows. Skipped when polars (the `bench` extra) is not installed."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("polars")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "peers"))
sys.path.insert(0, str(REPO / "benchmarks"))

from polars_ingest import process  # noqa: E402
from uniform import generate_uniform  # noqa: E402

from healthpipe.dataops.engine import EngineLimits  # noqa: E402
from healthpipe.dataops.header import read_header  # noqa: E402
from healthpipe.dataops.profiles import load_profile  # noqa: E402
from healthpipe.dataops.validation.file import validate_file  # noqa: E402
from healthpipe.dataops.validation.types import SplitPaths  # noqa: E402
from healthpipe.synthetic import SyntheticSpec, generate_csv  # noqa: E402


def _realistic(path: Path) -> Path:
    spec = SyntheticSpec(rows=6000, users=20, seed=7, bad_row_rate=0.05, end=datetime(2025, 6, 1))
    return generate_csv(spec, path)


def _uniform(path: Path) -> Path:
    return generate_uniform(3000, 10, 7, path)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("make", [_realistic, _uniform], ids=["realistic", "uniform"])
def test_polars_peer_splits_like_healthpipe_ingest(tmp_path: Path, make: object) -> None:
    # GIVEN a generated file
    source = make(tmp_path / "vitals.csv")  # type: ignore[operator]
    now = datetime.now(UTC)
    ours = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    # WHEN healthpipe's validation and the polars peer split it under the same clock
    expected = validate_file(
        source,
        read_header(source),
        load_profile("plausible"),
        ours,
        now_iso=now.isoformat(),
        limits=EngineLimits(),
    )
    got = process(source, tmp_path / "peer", now=now)
    # THEN the counts, the reasons and the processed rows are the same
    assert expected.rows_rejected > 0
    assert (got["rows_input"], got["rows_valid"], got["rows_rejected"]) == (
        expected.rows_input,
        expected.rows_valid,
        expected.rows_rejected,
    )
    assert got["reasons"] == expected.reasons
    assert _rows(tmp_path / "peer" / "processed.csv") == _rows(ours.processed_csv)
    assert _rows(tmp_path / "peer" / "rejected.csv") == _rows(ours.rejected_csv)
