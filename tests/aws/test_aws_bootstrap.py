"""bootstrap.build_aws and the boundary's error translation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import moto_env
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from healthpipe.adapters.aws.analysis_store import DynamoAnalysisStore
from healthpipe.adapters.aws.event_bus import EventBridgeBus
from healthpipe.adapters.aws.ledger import DynamoLedger
from healthpipe.adapters.aws.mailer import SesMailer
from healthpipe.adapters.aws.metrics import EmfMetrics
from healthpipe.adapters.aws.s3 import S3ObjectStore
from healthpipe.adapters.local.mailer import OutboxMailer
from healthpipe.bootstrap import LAMBDA_WORKDIR, build_aws, build_aws_store
from healthpipe.config import load_settings
from healthpipe.errors import ConfigError, PermanentError, TransientError


def test_duckdb_gets_60_percent_of_the_function_memory(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
    ports = build_aws(load_settings({"bucket": "b"}), clients=aws)
    assert ports.analyze_settings.engine.memory_limit_mb == 1228
    # an explicit setting wins (flag or HEALTHPIPE_DUCKDB_MEMORY_MB)
    monkeypatch.setenv("HEALTHPIPE_DUCKDB_MEMORY_MB", "300")
    ports = build_aws(load_settings({"bucket": "b"}), clients=aws)
    assert ports.ingest_settings.engine.memory_limit_mb == 300
    # outside Lambda the default stays
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    monkeypatch.delenv("HEALTHPIPE_DUCKDB_MEMORY_MB")
    ports = build_aws(load_settings({"bucket": "b"}), clients=aws)
    assert ports.analyze_settings.engine.memory_limit_mb == 256


def test_build_aws_wires_the_aws_adapters(aws: dict[str, Any], tmp_path: Path) -> None:
    settings = load_settings(
        {
            "bucket": "data",
            "ledger_table": "healthpipe-ledger",
            "analyses_table": "healthpipe-analyses",
            "event_bus_name": "healthpipe-bus",
            "mailer": "ses",
        }
    )
    ports = build_aws(settings, clients=aws)
    assert isinstance(ports.store, S3ObjectStore) and ports.store.bucket == "data"
    assert isinstance(ports.ledger, DynamoLedger) and ports.ledger.table == "healthpipe-ledger"
    assert isinstance(ports.analyses, DynamoAnalysisStore)
    assert isinstance(ports.bus, EventBridgeBus) and ports.bus.bus_name == "healthpipe-bus"
    assert isinstance(ports.mailer, SesMailer)
    assert isinstance(ports.metrics, EmfMetrics)
    assert ports.workdir == LAMBDA_WORKDIR == Path("/tmp/healthpipe")
    # a function that sends no mail keeps the default outbox (under its work dir)
    quiet = build_aws(load_settings({"bucket": "data"}), clients=aws, workdir=tmp_path)
    assert isinstance(quiet.mailer, OutboxMailer)


def test_missing_names_are_config_errors(aws: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="bucket"):
        build_aws_store(load_settings({}), clients=aws)
    ports = build_aws(load_settings({"bucket": "b"}), clients=aws)
    with pytest.raises(ConfigError, match="ledger_table"):
        ports.ledger.claim("ingest:x")
    with pytest.raises(ConfigError, match="analyses_table"):
        ports.analyses.get("d")


def test_client_errors_become_transient_or_permanent(aws: dict[str, Any]) -> None:
    store = S3ObjectStore("b", aws["s3"])
    with Stubber(aws["s3"]) as stub:
        stub.add_client_error("get_object", "SlowDown", http_status_code=503)
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
        with pytest.raises(TransientError, match="SlowDown") as slow:
            store.get_bytes("raw/a.csv")
        with pytest.raises(PermanentError, match="AccessDenied") as denied:
            store.get_bytes("raw/a.csv")
    assert slow.value.__cause__ is not None and denied.value.__cause__ is not None


def test_unreachable_endpoint_is_transient() -> None:
    client = boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name=moto_env.REGION
    ).client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{moto_env.free_port()}",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(TransientError):
        DynamoLedger("t", client).get("ingest:x")
