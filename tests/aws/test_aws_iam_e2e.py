"""The pipeline on moto with IAM enforced: each function runs with its own principal, whose
policy is the function's statements in infra/terraform/iam.tf (see iam_enforced.py).

Files take every path: a small file, a processed output over the 16 MiB multipart threshold,
a `.csv.gz` that expands past it, a file whose rejected rows pass it, and a key with spaces,
`+`, `:` and non-ASCII characters. Any AccessDenied ends a stage: as a raised error (dead
letter) or, being permanent, as a failure event; either fails these tests.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import iam_enforced
import moto_env
import pytest
from lambda_harness import HANDLERS

from healthpipe import constants as c
from healthpipe.adapters.aws.clients import BOTO_CONFIG
from healthpipe.synthetic import SyntheticSpec, generate_csv

MIB = 1024 * 1024
BIG_ROWS = 400_000  # about 20 MB of CSV: a processed CSV over 16 MiB
SPECIAL_KEY = "raw/ward 3+4 2026-01-05T10:00 Zürich é.csv"


@dataclass
class Enforced:
    admin: dict[str, Any]
    principals: dict[str, iam_enforced.Principal]
    statements: dict[str, list[iam_enforced.Statement]]


@dataclass
class Run:
    results: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[tuple[str, Exception]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # failure events (alerts)

    def problems(self) -> list[str]:
        raised = [f"{f}: {type(e).__name__}: {e}" for f, e in self.dead_letters]
        failed = [f"{e['detail-type']}: {e['detail'].get('error')}" for e in self.failures]
        return raised + failed


def admin_clients(endpoint: str, principal: iam_enforced.Principal) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id=principal.access_key,
        aws_secret_access_key=principal.secret_key,
        region_name=moto_env.REGION,
    )
    return {
        name: session.client(name, endpoint_url=endpoint, config=BOTO_CONFIG)
        for name in moto_env.SERVICES
    }


def enforce(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    endpoint: str,
    drop: tuple[str, str] | None = None,
) -> Iterator[Enforced]:
    """Principals from the Terraform statements (less `drop` = (function, sid)), then IAM on."""
    resolved = iam_enforced.function_statements(stack)
    iam = moto_env.session().client("iam", endpoint_url=endpoint)
    admin = iam_enforced.create_principal(iam, "test-admin", iam_enforced.ADMIN)
    principals, statements = {}, {}
    for function, (kept, _) in resolved.items():
        chosen = [s for s in kept if (function, s.sid) != drop]
        assert drop is None or drop[0] != function or len(chosen) == len(kept) - 1, drop
        statements[function] = chosen
        principals[function] = iam_enforced.create_principal(
            iam, f"{stack.prefix}-{function}", [s.document() for s in chosen]
        )
    with iam_enforced.moto_resources():
        iam_enforced.set_enforcement(endpoint, True)
        try:
            yield Enforced(admin_clients(endpoint, admin), principals, statements)
        finally:
            iam_enforced.set_enforcement(endpoint, False)


@pytest.fixture
def enforced(aws: dict[str, Any], stack: moto_env.Stack, moto_endpoint: str) -> Iterator[Enforced]:
    yield from enforce(aws, stack, moto_endpoint)


def drain(enforced: Enforced, stack: moto_env.Stack, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Deliver every queued event to its function, each under its own principal."""
    sqs = enforced.admin["sqs"]
    run = Run()
    for _ in range(20):
        moved = 0
        for function, module in HANDLERS.items():
            for event in moto_env.receive(sqs, stack.queues[function]):
                moved += 1
                for name, value in enforced.principals[function].env().items():
                    monkeypatch.setenv(name, value)
                try:
                    run.results.append((function, module.handler(moto_env.as_s3_sends_it(event))))
                except Exception as exc:  # Lambda would retry, then dead-letter it
                    run.dead_letters.append((function, exc))
        run.failures += moto_env.receive(sqs, stack.queues["alerts"])
        if not moved:
            return run
    raise AssertionError("queues did not drain in 20 rounds")


def manifests(s3: Any, bucket: str) -> list[dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=c.MANIFESTS_PREFIX).get("Contents", [])
    return [
        json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()) for item in listed
    ]


def size_of(s3: Any, bucket: str, key: str) -> int:
    return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])


def reports(s3: Any, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=c.REPORTS_PREFIX).get("Contents", [])
    return [item["Key"] for item in listed if item["Key"].endswith(".html")]


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CSV with a processed output over 16 MiB, its .csv.gz, and one whose rows all fail."""
    folder = tmp_path_factory.mktemp("big")
    big = generate_csv(SyntheticSpec(rows=BIG_ROWS, users=50, seed=3), folder / "big.csv")
    packed = folder / "packed.csv.gz"
    with big.open("rb") as source, gzip.open(packed, "wb", compresslevel=1) as out:
        out.write(source.read().replace(b"\n2026-", b"\n2025-"))  # other bytes: other dataset
    rejected = folder / "rejected.csv"
    with big.open() as source, rejected.open("w") as out:
        out.write(source.readline())
        for line in source:
            cells = line.split(",")
            cells[2] = "fast"  # heart_rate: not a number, so every row is rejected
            out.write(",".join(cells))
    return {"big": big, "packed": packed, "rejected": rejected}


def test_every_statement_resolves_and_every_function_has_one(stack: moto_env.Stack) -> None:
    resolved = iam_enforced.function_statements(stack)
    assert set(resolved) == set(HANDLERS)
    for function, (statements, skipped) in resolved.items():
        assert statements, function
        assert set(skipped.values()) <= set(iam_enforced.NOT_ON_MOTO), function
        for statement in statements:
            assert statement.actions and statement.resources, statement
            assert all("${" not in r for r in statement.resources), statement
    ingestor = {s.sid: s for s in resolved["ingestor"][0]}
    assert ingestor["ReadObjects"].resources == [f"arn:aws:s3:::{stack.bucket}/raw/*"]
    assert "s3:GetObjectVersion" in ingestor["ReadObjects"].actions


def test_every_path_runs_under_each_function_s_own_policy(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    sample_file: Path,
    big_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = enforced.admin["s3"]
    # GIVEN a small file, a big one, its .csv.gz, a file of rejected rows, an odd key
    uploads = {
        "raw/small.csv": sample_file,
        "raw/big.csv": big_files["big"],
        "raw/packed.csv.gz": big_files["packed"],
        "raw/all-rejected.csv": big_files["rejected"],
        SPECIAL_KEY: sample_file,
    }
    for key, path in uploads.items():
        body = path.read_bytes() if key == SPECIAL_KEY else None
        if body is not None:  # other bytes than raw/small.csv (a blank line), not a duplicate
            s3.put_object(Bucket=stack.bucket, Key=key, Body=body + b"\n")
        else:
            s3.upload_file(str(path), stack.bucket, key)
    # WHEN every event is delivered to its function, under that function's principal
    run = drain(enforced, stack, monkeypatch)
    # THEN nothing was denied or failed
    problems = run.problems()
    assert not problems, "\n".join(problems)
    # AND every upload has its processed manifest naming the uploaded version
    by_key = {m["source"]["key"]: m for m in manifests(s3, stack.bucket)}
    assert set(by_key) == set(uploads)
    for key, manifest in by_key.items():
        assert manifest["status"] == "processed", key
        versions = s3.list_object_versions(Bucket=stack.bucket, Prefix=key)["Versions"]
        assert manifest["source"]["version_id"] == versions[0]["VersionId"], key
    # AND the multipart paths were taken: outputs over 16 MiB
    big_out = by_key["raw/big.csv"]["outputs"]
    assert size_of(s3, stack.bucket, big_out["processed_csv"]) > 16 * MIB
    packed_out = by_key["raw/packed.csv.gz"]["outputs"]
    assert size_of(s3, stack.bucket, packed_out["processed_csv"]) > 16 * MIB
    assert size_of(s3, stack.bucket, by_key["raw/packed.csv.gz"]["source"]["key"]) < 16 * MIB
    rejected = by_key["raw/all-rejected.csv"]
    assert rejected["counts"]["valid"] == 0
    assert size_of(s3, stack.bucket, rejected["outputs"]["rejected_csv"]) > 16 * MIB
    # AND each file with valid rows got its report (the all-rejected one too: it is a report
    # of a file with no valid rows)
    assert len(reports(s3, stack.bucket)) == len(
        {m["dataset_id"] for m in by_key.values() if m["counts"]["valid"] > 0}
    ) or len(reports(s3, stack.bucket)) == len(by_key)


# (function, sid): a statement whose removal must break the pipeline
REQUIRED = [
    ("ingestor", "ReadObjects"),
    ("ingestor", "WriteObjects"),
    ("ingestor", "LedgerTable"),
    ("ingestor", "PublishToPipelineBus"),
    ("analyzer", "ReadObjects"),
    ("analyzer", "WriteObjects"),
    ("analyzer", "AnalysesTable"),
    ("analyzer", "PublishToPipelineBus"),
    ("notifier", "ReadObjects"),
    ("notifier", "AnalysesTable"),
    ("notifier", "SendReportEmail"),
]


@pytest.mark.parametrize(("function", "sid"), REQUIRED, ids=[f"{f}-{s}" for f, s in REQUIRED])
def test_removing_one_statement_breaks_the_pipeline(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    moto_endpoint: str,
    sample_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    sid: str,
) -> None:
    # GIVEN the policies from the Terraform, less one statement of one function
    for enforced in enforce(aws, stack, moto_endpoint, drop=(function, sid)):
        enforced.admin["s3"].upload_file(str(sample_file), stack.bucket, "raw/sample.csv")
        # WHEN the file goes through the pipeline
        run = drain(enforced, stack, monkeypatch)
        # THEN that function was denied: a dead letter or a failure event names it
        assert any("AccessDenied" in p or "not authorized" in p for p in run.problems()), (
            run.problems()
        )
        assert not moto_env.sent_emails() or function != "notifier"


def test_a_40_mb_file_goes_through_with_enforced_iam(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a 40 MB file of about 800k rows
    source = generate_csv(SyntheticSpec(rows=800_000, users=200, seed=5), tmp_path / "v.csv")
    assert source.stat().st_size > 40 * 1000 * 1000
    started = time.perf_counter()
    enforced.admin["s3"].upload_file(str(source), stack.bucket, "raw/forty.csv")
    # WHEN it goes through ingest, analyze and notify, each under its own policy
    run = drain(enforced, stack, monkeypatch)
    elapsed = time.perf_counter() - started
    # THEN it was processed and reported, with no denial
    assert run.problems() == []
    [manifest] = manifests(enforced.admin["s3"], stack.bucket)
    assert manifest["counts"]["input"] == 800_000
    assert len(moto_env.sent_emails()) == 1
    print(f"\n40 MB ({source.stat().st_size} bytes) ingest→analyze→notify: {elapsed:.1f} s")
    assert os.environ["AWS_ACCESS_KEY_ID"] == enforced.principals["notifier"].access_key
