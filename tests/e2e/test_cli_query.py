"""`healthpipe query` over the lake of a workspace that ran three generated files."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app
from healthpipe.dataops.lake import FINDINGS_COLUMNS, READINGS_COLUMNS
from healthpipe.domain.identity import participant_bucket
from support.pipeline import ingest_and_analyze

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("cli_query")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


# tests/conftest.py: ingest never sees "now" before this (its fixtures are per test).
DATA_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A workspace after ingest and analyze of three generated files (readings dated 2025-06),
    as `run` leaves it but the reports (tests/support/pipeline.py), made once for the module
    under the same isolation and clock floor as tests/conftest.py."""
    import os

    import healthpipe.stages.ingest as ingest

    tmp_path = tmp_path_factory.mktemp("lake")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HEALTHPIPE_"):
                mp.delenv(name)
        mp.chdir(tmp_path)
        mp.setattr(ingest, "utc_now", lambda: max(datetime.now(UTC), DATA_NOT_BEFORE))
        files = []
        for day in (1, 2, 3):
            out = tmp_path / f"day{day}.csv"
            result = invoke(
                "generate", "--rows", "200", "--users", "4", "--seed", str(day),
                "--end", f"2025-06-0{day}T12:00:00", "--out", str(out),
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            files.append(out)
        ws = tmp_path / "ws"
        outcomes = ingest_and_analyze(ws, files)  # what `run` stores but the report
    return ws, outcomes


def valid_rows_by_csv_module(ws: Path) -> int:
    """An independent count: Python's csv module over every processed CSV."""
    total = 0
    for path in sorted((ws / "bucket" / "processed" / "csv").rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            total += sum(1 for _ in csv.DictReader(handle))
    return total


def test_count_of_readings_equals_the_valid_rows_of_every_file(
    ran: tuple[Path, list[dict[str, Any]]],
) -> None:
    ws, outcomes = ran
    result = invoke("query", "select count(*) as n from readings", "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["columns"] == ["n"]
    counted = valid_rows_by_csv_module(ws)
    manifests = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (ws / "bucket" / "manifests").glob("*.json")
    ]
    assert len(manifests) == 3
    assert counted > 500  # 3 × 200 rows, a few rejected on purpose
    assert document["rows"] == [[counted]]
    assert counted == sum(int(o["rows"]["valid"]) for o in outcomes)


def test_findings_per_dataset_equal_each_file_s_anomalies(
    ran: tuple[Path, list[dict[str, Any]]],
) -> None:
    ws, outcomes = ran
    sql = "select dataset_id, count(*) from findings group by dataset_id order by dataset_id"
    result = invoke("query", sql, "-w", str(ws), "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["dataset_id", "count_star()"]
    expected = sorted((str(o["dataset_id"]), str(o["anomalies"])) for o in outcomes)
    assert [tuple(r) for r in rows[1:]] == expected
    assert all(int(n) > 0 for _, n in expected)


def test_the_views_have_the_columns_the_pipeline_writes(
    ran: tuple[Path, list[dict[str, Any]]],
) -> None:
    ws, _ = ran
    for view, columns in (("readings", READINGS_COLUMNS), ("findings", FINDINGS_COLUMNS)):
        result = invoke("query", f"describe {view}", "-w", str(ws), "--json")
        assert result.exit_code == 0, result.output
        described = [(r[0], r[1]) for r in json.loads(result.stdout)["rows"]]
        assert described == [
            (n, "TIMESTAMP WITH TIME ZONE" if k == "TIMESTAMPTZ" else k) for n, k in columns
        ]


def test_csv_cells_are_formula_safe_and_the_table_is_readable(
    ran: tuple[Path, list[dict[str, Any]]],
) -> None:
    ws, _ = ran
    sql = "select '=HYPERLINK(1)' as \"@col\", -5.5 as neg, min(dt) as dt from readings"
    result = invoke("query", sql, "-w", str(ws), "--csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == ["'@col,neg,dt", "'=HYPERLINK(1),-5.5," + _day(ws)]
    table = invoke("query", "select user_id, count(*) n from readings group by 1", "-w", str(ws))
    assert table.exit_code == 0, table.output
    assert "user_id" in table.stdout and "4 row(s)" in table.stdout


def _day(ws: Path) -> str:
    """The earliest reading day, as the lake's partition folders name it."""
    return min(p.name.removeprefix("dt=") for p in (ws / LAKE).glob("pb=*/dt=*"))


LAKE = "bucket/lake/readings"
LAKE_KEY = re.compile(r"pb=(\d{2})/dt=(\d{4}-\d{2}-\d{2})/([0-9a-f]{16})\.parquet")
VITALS = "heart_rate, spo2, steps, temp_c, systolic_bp, diastolic_bp"


def lake_rows(ws: Path) -> list[tuple[Any, ...]]:
    """Every lake row, with its file's partition values and dataset id, read file by file
    (no hive partitioning: the values come from the path as parsed here)."""
    rows: list[tuple[Any, ...]] = []
    for path in sorted((ws / LAKE).rglob("*")):
        if path.is_file():
            found = LAKE_KEY.fullmatch(path.relative_to(ws / LAKE).as_posix())
            assert found, path
            pb, dt, dataset_id = found.groups()
            sql = (
                f"SELECT user_id, epoch(event_time), {VITALS} FROM "
                f"read_parquet('{path}', hive_partitioning = false)"
            )
            rows += [(pb, dt, dataset_id, *row) for row in duckdb.execute(sql).fetchall()]
    return rows


def test_the_lake_is_partitioned_by_participant_bucket_and_reading_day(
    ran: tuple[Path, list[dict[str, Any]]],
) -> None:
    """Issue 18, Deliver 1: each file's valid readings, split by `pb` (the participant's
    bucket under the workspace's secret) and `dt` (the reading's UTC day); the union equals
    the processed rows (DuckDB over the processed CSVs); no key holds a raw id."""
    ws, outcomes = ran
    secret = (ws / "pseudonym.key").read_text(encoding="utf-8").strip()
    rows = lake_rows(ws)
    users = {row[3] for row in rows}
    assert len(users) == 4 and len({row[0] for row in rows}) > 1  # several buckets
    for pb, dt, _, user_id, epoch, *_ in rows:
        assert int(pb) == participant_bucket(user_id, secret)
        assert datetime.fromtimestamp(epoch, UTC).date().isoformat() == dt
    keys = [p.relative_to(ws / LAKE).as_posix() for p in (ws / LAKE).rglob("*.parquet")]
    assert not [key for key in keys if any(user in key for user in users)]
    assert {key.rsplit("/", 1)[-1][:16] for key in keys} == {o["dataset_id"] for o in outcomes}
    csvs = str(ws / "bucket/processed/csv/*/*.csv")
    processed = duckdb.execute(
        f"SELECT regexp_extract(filename, '-([0-9a-f]{{16}})\\.csv$', 1), user_id, "
        f"epoch(event_time::TIMESTAMPTZ), {VITALS} "
        f"FROM read_csv('{csvs}', filename = true, hive_partitioning = false, "
        "types = {'user_id': 'VARCHAR'})"
    ).fetchall()
    assert sorted(row[2:] for row in rows) == sorted(processed)


def test_analysing_a_file_again_overwrites_its_lake_files(
    ran: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """A re-analysis (what `healthpipe forget` does after erasing) writes the same keys:
    the lake holds each reading once."""
    from healthpipe.bootstrap import build_local
    from healthpipe.commands.output import settings_from
    from healthpipe.domain.documents import Manifest, ProcessingComplete
    from healthpipe.domain.identity import manifest_key
    from healthpipe.stages.analyze import analyze_again

    source, outcomes = ran
    ws = tmp_path / "ws"
    shutil.copytree(source, ws)  # the module's workspace stays as it was
    before = sorted(p.relative_to(ws).as_posix() for p in (ws / LAKE).rglob("*.parquet"))
    dataset_id = str(outcomes[0]["dataset_id"])
    local = build_local(settings_from(ws, None, analyst="builtin"))
    manifest = local.ports.store.get_document(manifest_key(dataset_id), Manifest)
    analyze_again(
        ProcessingComplete(
            correlation_id=manifest.correlation_id,
            dataset_id=dataset_id,
            status="success",
            manifest_key=manifest_key(dataset_id),
            processed_key=str(manifest.outputs.processed_parquet),
        ),
        local.ports,
    )
    after = sorted(p.relative_to(ws).as_posix() for p in (ws / LAKE).rglob("*.parquet"))
    assert after == before
    assert sorted(lake_rows(ws)) == sorted(lake_rows(source))


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("selec 1", "syntax error"),
        ("select nope from readings", "nope"),
        ("copy (select * from readings) to 'out.csv'", "read-only: COPY statements are refused"),
        ("attach 'x.duckdb' as x", "read-only: ATTACH statements are refused"),
    ],
)
def test_bad_or_writing_sql_is_one_line_and_exit_2(
    ran: tuple[Path, list[dict[str, Any]]], sql: str, message: str
) -> None:
    ws, _ = ran
    result = invoke("query", sql, "-w", str(ws))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not Path("out.csv").exists() and not Path("x.duckdb").exists()


def test_a_missing_workspace_is_refused(tmp_path: Path) -> None:
    result = invoke("query", "select 1", "-w", str(tmp_path / "none"))
    assert result.exit_code == 2 and "no workspace" in result.stderr
