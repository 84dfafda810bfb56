"""The grouped analysis's Lambda handlers against the moto server, driven in the order the
state machine gives (infra/terraform/statemachine/grouped_analyze.asl.json.tftpl, walked by
the chunked ingest's walker from StartAt through Next, Choice, Catch and the Map's
ItemProcessor: not a hand-written list), and compared with the single analyzer on the same
processed file: the same stored analysis (its facts, brief and analyst's output), the same
anomaly rows in the same order. Then the claim, the event, a replay; and a failed Merge
that releases the claim and publishes Data Analysis Failed."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import moto_env
import pytest
from test_aws_chunked import Walker, _asl, rows_of, sample

from healthpipe import constants as c
from healthpipe.errors import PermanentError
from healthpipe.lambdas import FUNCTIONS, analyze_group, analyze_release, analyzer, ingestor

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:healthpipe-grouped-analyze:t1"
STEPS = [name for name in FUNCTIONS if name.startswith("analyze_")]
GROUP_ROWS = 140  # the sample's six participants of about 67 readings: three groups
ITEMS = ("AnalyzeGroup",)


@pytest.fixture
def steps(stack: moto_env.Stack, tmp_path: Path) -> Any:
    modules = [importlib.import_module(f"healthpipe.lambdas.{name}") for name in STEPS]
    for module in modules:
        module._function.reset()
        module._function.workdir = tmp_path / f"lambda-{module.__name__.rsplit('.', 1)[-1]}"
    yield stack
    for module in modules:
        module._function.reset()
        module._function.workdir = None


def processed(stack: moto_env.Stack, aws: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The sample (repeats, one conflicting) ingested by the ingestor: its Data Processing
    Complete event as EventBridge delivers it."""
    source = sample(tmp_path)
    aws["s3"].put_object(Bucket=stack.bucket, Key="raw/upload.csv", Body=source.read_bytes())
    (created,) = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    ingestor.handler(created)
    (complete,) = moto_env.receive(aws["sqs"], stack.queues["analyzer"])
    assert complete["detail-type"] == c.PROCESSING_COMPLETE
    assert complete["detail"]["rows"]["valid"] > 3 * GROUP_ROWS // 2
    return complete


def body(aws: dict[str, Any], bucket: str, key: str) -> bytes:
    return bytes(aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())


def ledger_item(aws: dict[str, Any], stack: moto_env.Stack, key: str) -> Any:
    return (
        aws["dynamodb"]
        .get_item(TableName=stack.ledger_table, Key={"pk": {"S": key}}, ConsistentRead=True)
        .get("Item")
    )


def table(aws: dict[str, Any], name: str) -> dict[str, Any]:
    """The table's items by key, without when they were written (and when they expire), and
    the JSON they hold parsed, as `comparable` leaves it."""
    pages = aws["dynamodb"].get_paginator("scan").paginate(TableName=name)
    skip = {"created_at", "created_epoch", "expires_at", "updated_at"}

    def value(attribute: dict[str, Any]) -> Any:
        text = attribute.get("S", "")
        if not text.startswith("{"):
            return attribute
        document = {k: v for k, v in json.loads(text).items() if k not in skip}
        if isinstance(document.get("analyst"), dict):
            document["analyst"] = {**document["analyst"], "latency_ms": 0}
        return document

    return {
        f"{item['pk']['S']}|{item.get('sk', {}).get('S')}": {
            k: value(v) for k, v in item.items() if k not in skip
        }
        for page in pages
        for item in page["Items"]
    }


def comparable(analysis: dict[str, Any]) -> dict[str, Any]:
    """The stored analysis without what differs between two runs of the same analysis: when,
    how long, and the analyst's latency."""
    kept = {k: v for k, v in analysis.items() if k not in ("created_at", "timings")}
    return kept | {"analyst": {**analysis["analyst"], "latency_ms": 0}}


def test_the_state_machine_s_order_gives_the_single_analyzer_s_analysis(
    steps: moto_env.Stack,
    aws: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a processed file with conflicting readings, and the definition as Terraform
    # renders it with groups of at most 140 readings
    complete = processed(steps, aws, tmp_path)
    dataset_id = complete["detail"]["dataset_id"]
    asl = _asl()
    definition = asl.render(
        asl.STATEMACHINE / "grouped_analyze.asl.json.tftpl", {"group_rows": str(GROUP_ROWS)}
    )

    def context(execution: str) -> dict[str, Any]:
        return {"Execution": {"Id": execution, "Input": complete}}

    # WHEN Merge fails (after its retries; the file in one group) THEN the failure branch
    # releases the execution's claim and publishes Data Analysis Failed
    from healthpipe.stages import grouped_merge

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("merge went away")

    merge_groups = grouped_merge.merge_groups
    monkeypatch.setattr(grouped_merge, "merge_groups", broken)
    whole = asl.render(asl.STATEMACHINE / "grouped_analyze.asl.json.tftpl", {"group_rows": "1000"})
    failed = Walker(aws["s3"], aws["events"]).run(whole, complete, context(EXECUTION))
    assert failed["state"] == "Failed", failed
    assert ledger_item(aws, steps, f"analyze:{dataset_id}") is None
    alerts = moto_env.receive(aws["sqs"], steps.queues["alerts"])
    assert [(e["detail-type"], e["detail"]["dataset_id"]) for e in alerts] == [
        (c.ANALYSIS_FAILED, dataset_id)
    ]
    assert alerts[0]["detail"]["error"] == "RuntimeError"
    monkeypatch.setattr(grouped_merge, "merge_groups", merge_groups)

    # WHEN the states run again in the definition's order (another execution)
    walker = Walker(aws["s3"])
    outcome = walker.run(definition, complete, context(EXECUTION + "-2"))
    # THEN it ended in Merge through every state, the Map once per group
    assert outcome["status"] == "Succeed" and outcome["state"] == "Merge", outcome
    job = walker.outputs["Prepare"]["job"]
    assert job["outcome"] == "prepared" and job["groups"] >= 3 and job["conflicting_key"]
    assert walker.ran.count("AnalyzeGroup") == job["groups"]
    assert [s for s in walker.ran if s not in ITEMS] == [
        "Prepare",
        "Prepared?",
        "AnalyzeGroups",
        "Merge",
    ]
    assert job["work_prefix"] == f"{c.WORK_PREFIX}analyze/{dataset_id}/"
    # AND the claim is completed and Data Analysis Complete was published
    assert ledger_item(aws, steps, f"analyze:{dataset_id}")["status"]["S"] == "completed"
    (done,) = moto_env.receive(aws["sqs"], steps.queues["notifier"])
    assert done["detail-type"] == c.ANALYSIS_COMPLETE
    assert done["detail"]["analysis_key"] == outcome["output"]["analysis_key"]
    grouped = json.loads(body(aws, steps.bucket, outcome["output"]["analysis_key"]))
    anomalies_key = grouped["keys"]["anomalies"]
    grouped_anomalies = tmp_path / "grouped.parquet"
    grouped_anomalies.write_bytes(body(aws, steps.bucket, anomalies_key))
    assert grouped["data_quality"]["reasons"].get("conflicting_reading", 0) >= 1
    assert grouped["anomalies"]["total"] > 0

    # WHEN the same event starts another execution THEN it is already analysed: the
    # completion event is published again
    again = Walker(aws["s3"]).run(definition, complete, context(EXECUTION + "-3"))
    assert again["state"] == "AlreadyAnalyzed"
    replayed = moto_env.receive(aws["sqs"], steps.queues["notifier"])
    assert [e["detail-type"] for e in replayed] == [c.ANALYSIS_COMPLETE]

    # WHEN the single analyzer analyses the same file (its claim given up first)
    stored = table(aws, steps.analyses_table)
    aws["dynamodb"].delete_item(
        TableName=steps.ledger_table, Key={"pk": {"S": f"analyze:{dataset_id}"}}
    )
    analyzer.handler(complete)
    # THEN its analysis and anomaly rows are the grouped analysis's
    single = json.loads(body(aws, steps.bucket, outcome["output"]["analysis_key"]))
    assert comparable(grouped) == comparable(single)
    single_anomalies = tmp_path / "single.parquet"
    single_anomalies.write_bytes(body(aws, steps.bucket, anomalies_key))
    rows = rows_of(single_anomalies)
    assert rows and rows_of(grouped_anomalies) == rows
    # AND the analysis store's items (summary, flagged items, the file's histograms) too
    assert any(k.startswith("HISTORY#") for k in stored) and any("SUMMARY" in k for k in stored)
    assert table(aws, steps.analyses_table) == stored


def test_a_group_s_missing_rows_fail_it_permanently_and_release_leaves_others_claims(
    steps: moto_env.Stack, aws: dict[str, Any]
) -> None:
    # GIVEN a job whose group's rows do not exist
    detail = {
        "correlation_id": "b/raw/x.csv@v1",
        "dataset_id": "0123456789abcdef",
        "status": "success",
        "manifest_key": "manifests/0123456789abcdef.json",
        "processed_key": "processed/x.parquet",
    }
    job = {
        "outcome": "prepared",
        "bucket": steps.bucket,
        "dataset_id": "0123456789abcdef",
        "correlation_id": "b/raw/x.csv@v1",
        "claim_owner": EXECUTION,
        "detail": detail,
        "work_prefix": "work/analyze/0123456789abcdef/",
        "groups_key": "work/analyze/0123456789abcdef/groups.json",
        "groups": 1,
    }
    group = {"index": 0, "readings": ["work/analyze/0123456789abcdef/group-00000/r.parquet"]}
    # WHEN the Map's item runs THEN it fails as PermanentError (the Retry that never retries)
    with pytest.raises(PermanentError):
        analyze_group.handler({"job": job, "group": group})
    # AND Release gives up only a claim the execution holds
    from healthpipe.adapters.aws.ledger import DynamoLedger

    ledger = DynamoLedger(steps.ledger_table, aws["dynamodb"], lease_seconds=600)
    ledger.owner = EXECUTION + "-other"
    assert ledger.claim("analyze:0123456789abcdef").acquired
    request = {"job": job, "execution": EXECUTION}
    assert analyze_release.handler(request)["outcome"] == "not_held"
    assert ledger_item(aws, steps, "analyze:0123456789abcdef")["status"]["S"] == "in_progress"
    ledger.release("analyze:0123456789abcdef")
    ledger.owner = EXECUTION
    assert ledger.claim("analyze:0123456789abcdef").acquired
    assert analyze_release.handler(request)["outcome"] == "released"
    assert ledger_item(aws, steps, "analyze:0123456789abcdef") is None
