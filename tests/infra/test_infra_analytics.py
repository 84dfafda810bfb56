"""Processed layout and Athena: the Parquet and the CSV of the valid rows live under their own
prefixes (`processed/parquet/dt=…/`, `processed/csv/dt=…/`), the manifest names both, and
the Glue table (partition projection on `dt`) points at the Parquet alone with the columns a
file the pipeline writes really has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from infra_terraform import Module, attr, load_module
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.domain.identity import (
    LAKE_READINGS_PREFIX,
    PROCESSED_CSV_PREFIX,
    PROCESSED_PARQUET_PREFIX,
    DatasetKeys,
    lake_readings_key,
)

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("infra_analytics")

DUCKDB_TO_GLUE = {
    "BIGINT": "bigint",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "VARCHAR": "string",
    "DOUBLE": "double",
}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A small file run through the local runtime; (bucket folder, its manifest)."""
    tmp = tmp_path_factory.mktemp("analytics")
    data = tmp / "vitals.csv"
    runner = CliRunner()
    made = runner.invoke(
        app, ["generate", "--rows", "400", "--users", "4", "--seed", "3", "--out", str(data)]
    )
    assert made.exit_code == 0, made.output
    workspace = tmp / "ws"
    done = runner.invoke(
        app, ["run", str(data), "--json"], env={"HEALTHPIPE_WORKSPACE": str(workspace)}
    )
    assert done.exit_code == 0, done.output
    bucket = workspace / "bucket"
    [path] = sorted((bucket / "manifests").glob("*.json"))
    return bucket, json.loads(path.read_text())


def test_parquet_and_csv_are_under_their_own_prefixes_and_the_manifest_names_both(
    manifest: tuple[Path, dict[str, object]],
) -> None:
    bucket, document = manifest
    outputs = document["outputs"]
    assert isinstance(outputs, dict)
    parquet, csv = outputs["processed_parquet"], outputs["processed_csv"]
    assert re.fullmatch(
        r"processed/parquet/dt=\d{4}-\d{2}-\d{2}/vitals-[0-9a-f]{16}\.parquet", parquet
    )
    assert re.fullmatch(r"processed/csv/dt=\d{4}-\d{2}-\d{2}/vitals-[0-9a-f]{16}\.csv", csv)
    assert (bucket / parquet).is_file() and (bucket / csv).is_file()
    # nothing but Parquet under the table's location
    under = [p for p in (bucket / PROCESSED_PARQUET_PREFIX).rglob("*") if p.is_file()]
    assert under and all(p.suffix == ".parquet" for p in under)


def test_the_key_functions_both_runtimes_use_separate_the_formats() -> None:
    keys = DatasetKeys(dataset_id="0123456789abcdef", stem="ward-7", day="2026-11-30")
    assert (
        keys.processed_parquet == "processed/parquet/dt=2026-11-30/ward-7-0123456789abcdef.parquet"
    )
    assert keys.processed_csv == "processed/csv/dt=2026-11-30/ward-7-0123456789abcdef.csv"
    assert PROCESSED_CSV_PREFIX != PROCESSED_PARQUET_PREFIX


def test_the_glue_table_has_the_columns_of_a_processed_parquet(
    manifest: tuple[Path, dict[str, object]], module: Module
) -> None:
    bucket, document = manifest
    outputs = document["outputs"]
    assert isinstance(outputs, dict)
    path = bucket / str(outputs["processed_parquet"])
    query = f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)"
    described = duckdb.sql(query).fetchall()
    written = [(name, DUCKDB_TO_GLUE[kind]) for name, kind, *_ in described]
    table = [(c["name"], c["type"]) for c in module.local("processed_columns")]
    assert table == written


def test_the_glue_table_projects_dt_over_the_parquet_prefix(module: Module) -> None:
    assert module.local("parquet_prefix") == PROCESSED_PARQUET_PREFIX
    table = module.resource("aws_glue_catalog_table", "processed")
    parameters = attr(table, "parameters")
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"  # DatasetKeys.day
    assert parameters["storage.location.template"] == (
        "s3://${aws_s3_bucket.data.bucket}/${local.parquet_prefix}dt=$${dt}/"
    )
    storage = attr(table, "storage_descriptor")
    assert attr(storage, "location") == "s3://${aws_s3_bucket.data.bucket}/${local.parquet_prefix}"
    serde = attr(attr(storage, "ser_de_info"), "serialization_library")
    assert serde.endswith("ParquetHiveSerDe")
    assert attr(attr(table, "partition_keys"), "name") == "dt"


def test_the_lake_table_has_the_columns_of_a_lake_file(
    manifest: tuple[Path, dict[str, object]], module: Module
) -> None:
    """`lake_readings` (issue 18): the columns analyze writes into each lake file, and the
    partitions `pb`, `dt` from the path (not in the file)."""
    bucket, _ = manifest
    files = sorted((bucket / LAKE_READINGS_PREFIX).glob("pb=*/dt=*/*.parquet"))
    assert files
    for path in files[:2]:
        query = f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)"
        written = [(name, DUCKDB_TO_GLUE[kind]) for name, kind, *_ in duckdb.sql(query).fetchall()]
        table = [(c["name"], c["type"]) for c in module.local("processed_columns")]
        assert table == written
    lake = module.resource("aws_glue_catalog_table", "lake_readings")
    keys = attr(lake, "partition_keys")
    assert [(attr(k, "name"), attr(k, "type")) for k in keys] == [
        ("pb", "string"),
        ("dt", "string"),
    ]


def test_the_lake_table_projects_pb_and_dt_over_the_lake_prefix(module: Module) -> None:
    assert module.local("lake_prefix") == LAKE_READINGS_PREFIX
    parameters = attr(module.resource("aws_glue_catalog_table", "lake_readings"), "parameters")
    assert parameters["projection.enabled"] == "true"
    # identity.participant_bucket: 0-63, written with two digits
    assert (parameters["projection.pb.type"], parameters["projection.pb.range"]) == (
        "integer",
        "0,63",
    )
    assert parameters["projection.pb.digits"] == "2"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert parameters["projection.dt.range"].endswith(",NOW+1DAYS")  # max_future_hours = 24
    template = parameters["storage.location.template"]
    assert template == "s3://${aws_s3_bucket.data.bucket}/${local.lake_prefix}pb=$${pb}/dt=$${dt}/"
    # the template names the keys analyze writes
    key = lake_readings_key(7, "2025-06-01", "0123456789abcdef")
    filled = template.split("}/", 1)[1].replace("${local.lake_prefix}", LAKE_READINGS_PREFIX)
    assert key.startswith(filled.replace("$${pb}", "07").replace("$${dt}", "2025-06-01"))


def test_athena_results_are_encrypted_with_the_data_key(module: Module) -> None:
    workgroup = module.resource("aws_athena_workgroup", "this")
    configuration = attr(workgroup, "configuration")
    assert attr(configuration, "enforce_workgroup_configuration") is True
    result = attr(configuration, "result_configuration")
    encryption = attr(result, "encryption_configuration")
    assert attr(encryption, "encryption_option") == "SSE_KMS"
    assert attr(encryption, "kms_key_arn") == "${aws_kms_key.this.arn}"
