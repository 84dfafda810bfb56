"""The pipeline on moto with IAM enforced: each function runs with its own principal, whose
policy is the function's statements in infra/terraform/iam.tf (see iam_enforced.py).

Files take every path: a small file, a processed output over the 16 MiB multipart threshold,
a `.csv.gz` that expands past it, a file whose rejected rows pass it, and a key with spaces,
`+`, `:` and non-ASCII characters. Any AccessDenied ends a stage: as a raised error (dead
letter) or, being permanent, as a `failed` record and a failure event; any of them fails
these tests.

Removing any one statement moto can check from a function's policy stops that function with
AccessDenied, and the same input goes through once the statement is back. One test per
function removes its statements in turn on one stack; the function's input is made once, by
the upstream functions under their whole policies (a failed stage releases its claim, so
the next case runs the same input). The big file, in parts of S3's smallest size (four of
them), goes through all three.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
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
from boto3.s3.transfer import TransferConfig
from lambda_harness import HANDLERS

from healthpipe import constants as c
from healthpipe.adapters.aws import s3 as s3_adapter
from healthpipe.adapters.aws.clients import BOTO_CONFIG
from healthpipe.domain.identity import report_key
from healthpipe.synthetic import SyntheticSpec, generate_csv

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("aws_iam_e2e")

MIB = 1024 * 1024
# The fewest rows that still take the multipart paths, with a margin (the test asserts the
# sizes): the costs grow with the rows, so the rows are made wider (a longer participant id,
# `WIDE_ID`, 55 characters with its number, under the profile's 128). A processed row is then
# ~97 bytes (~98% valid): 190k rows give an 18.4 MB processed CSV (174k would reach 16 MiB);
# a rejected row, with its reason and number, is ~127 bytes: 150k all-rejected rows give a
# 19.1 MB rejected CSV (132k would reach it).
BIG_ROWS = 190_000
REJECTED_ROWS = 150_000
WIDE_ID = b",ward-3-cardiology-follow-up-cohort-2026-participant-"  # for ",user_"
SPECIAL_KEY = "raw/ward 3+4 2026-01-05T10:00 Zürich é.csv"
NOTHING = {"Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": ["*"]}


@dataclass
class Enforced:
    admin: dict[str, Any]
    principals: dict[str, iam_enforced.Principal]
    statements: dict[str, list[iam_enforced.Statement]]

    def restrict(self, function: str, without: str | None) -> None:
        """Replace the function's policy by its Terraform statements less `without`."""
        kept = [s for s in self.statements[function] if s.sid != without]
        assert without is None or len(kept) == len(self.statements[function]) - 1, without
        name = self.principals[function].name
        # a policy needs a statement: one that grants nothing the functions call
        documents = [s.document() for s in kept] or [NOTHING]
        self.admin["iam"].put_user_policy(
            UserName=name,
            PolicyName=name,
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": documents}),
        )


@dataclass
class Run:
    results: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[tuple[str, Exception]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # failure events (alerts)

    def problems(self) -> list[tuple[str, str]]:
        """(function, what went wrong): raised errors (Lambda would retry, then dead-letter
        them), records that ended `failed` or `refused` (permanent: no retry; the notifier's
        publish no event), and the failure events on the alert route."""
        raised = [(f, f"{type(e).__name__}: {e}") for f, e in self.dead_letters]
        ended = [
            (f, f"{r['outcome']}: {r.get('error')}")
            for f, result in self.results
            for r in result["results"]
            if r["outcome"] in ("failed", "refused")
        ]
        published = [
            (
                FUNCTION_OF_SOURCE.get(e["source"], e["source"]),
                f"{e['detail-type']}: {e['detail'].get('error')}",
            )
            for e in self.failures
        ]
        return raised + ended + published


FUNCTION_OF_SOURCE = {c.SOURCE_INGESTOR: "ingestor", c.SOURCE_ANALYZER: "analyzer"}


def admin_clients(endpoint: str, principal: iam_enforced.Principal) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id=principal.access_key,
        aws_secret_access_key=principal.secret_key,
        region_name=moto_env.REGION,
    )
    return {
        name: session.client(name, endpoint_url=endpoint, config=BOTO_CONFIG)
        for name in (*moto_env.SERVICES, "iam")
    }


def enforce(aws: dict[str, Any], stack: moto_env.Stack, endpoint: str) -> Iterator[Enforced]:
    """One IAM user per function with its Terraform statements, an admin, then IAM on."""
    resolved = iam_enforced.function_statements(stack)
    iam = moto_env.session().client("iam", endpoint_url=endpoint)
    admin = iam_enforced.create_principal(iam, "test-admin", iam_enforced.ADMIN)
    principals, statements = {}, {}
    for function, (kept, _) in resolved.items():
        statements[function] = kept
        principals[function] = iam_enforced.create_principal(
            iam, f"{stack.prefix}-{function}", [s.document() for s in kept]
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


def deliver(
    enforced: Enforced,
    function: str,
    event: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    run: Run,
) -> None:
    """One event to one function, under that function's principal (as its Lambda role)."""
    for name, value in enforced.principals[function].env().items():
        monkeypatch.setenv(name, value)
    try:
        run.results.append((function, HANDLERS[function].handler(moto_env.as_s3_sends_it(event))))
    except Exception as exc:  # Lambda would retry, then dead-letter it
        run.dead_letters.append((function, exc))


def drain(enforced: Enforced, stack: moto_env.Stack, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Deliver every queued event to its function, each under its own principal."""
    sqs = enforced.admin["sqs"]
    run = Run()
    for _ in range(20):
        moved = 0
        for function in HANDLERS:
            for event in moto_env.receive(sqs, stack.queues[function]):
                moved += 1
                deliver(enforced, function, event, monkeypatch, run)
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
    generated = generate_csv(SyntheticSpec(rows=BIG_ROWS, users=10, seed=3), folder / "gen.csv")
    big = folder / "big.csv"
    header, rows = generated.read_bytes().split(b"\n", 1)
    big.write_bytes(header + b"\n" + rows.replace(b",user_", WIDE_ID))
    packed = folder / "packed.csv.gz"
    with big.open("rb") as source, gzip.open(packed, "wb", compresslevel=1) as out:
        out.write(source.read().replace(b"\n2026-", b"\n2025-"))  # other bytes: other dataset
    rejected = folder / "rejected.csv"
    with big.open() as source, rejected.open("w") as out:
        out.write(source.readline())
        for line in itertools.islice(source, REJECTED_ROWS):
            cells = line.split(",")
            cells[2] = "fast"  # heart_rate: not a number, so every row is rejected
            out.write(",".join(cells))
    return {"big": big, "packed": packed, "rejected": rejected}


def test_every_statement_resolves_and_every_function_has_one(stack: moto_env.Stack) -> None:
    resolved = iam_enforced.function_statements(stack)
    assert set(resolved) == (
        set(HANDLERS) | set(CHUNKED_REMOVABLE) | set(RELEASE_REMOVABLE) | set(GROUPED_REMOVABLE)
    )
    for function, (statements, skipped) in resolved.items():
        assert statements, function
        assert set(skipped.values()) <= set(iam_enforced.NOT_ON_MOTO), function
        for statement in statements:
            assert statement.actions and statement.resources, statement
            assert all("${" not in r for r in statement.resources), statement
    sids = {f: {s.sid: s for s in statements} for f, (statements, _) in resolved.items()}
    ingestor = sids["ingestor"]
    assert ingestor["ReadObjects"].resources == [f"arn:aws:s3:::{stack.bucket}/raw/*"]
    assert "s3:GetObjectVersion" in ingestor["ReadObjects"].actions
    # the analyzer reads the rejected rows (conflicting readings are scored)
    rejected = f"arn:aws:s3:::{stack.bucket}/rejected/*"
    assert rejected in sids["analyzer"]["ReadObjects"].resources
    # the notifier only reads the analyses (read_only_adapters): no write statement
    assert "WriteAnalyses" in sids["analyzer"] and "WriteAnalyses" not in sids["notifier"]
    # listing keeps its prefix condition (checked here: moto gets the statement without it)
    listing = sids["notifier"]["ListDataBucket"].conditions
    assert listing == {"StringLike": {"s3:prefix": ["analyzed/*", "reports/*"]}}
    # what moto cannot check, by service: the analyzer's model, queue, logs, traces, key
    assert set(resolved["analyzer"][1]) == {
        "UseDataKey",
        "WriteOwnLogs",
        "DeadLetterFailedInvocations",
        "ReceiveAnalyzeQueue",
        "WriteTraces",
        "InvokeAnalystModel",
    }


@pytest.mark.timeout(900)
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
    assert not problems, "\n".join(f"{f}: {p}" for f, p in problems)
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
    # AND every file was analysed and reported once: one report and one email per dataset
    # (the all-rejected file too: a report of a file with no valid rows)
    datasets = {m["dataset_id"] for m in by_key.values()}
    assert len(datasets) == len(uploads)
    report_keys = set(reports(s3, stack.bucket))
    assert report_keys == {report_key(d) for d in datasets} | {f"{c.REPORTS_PREFIX}index.html"}
    assert len(moto_env.sent_emails()) == len(datasets)
    notified = [r for f, result in run.results if f == "notifier" for r in result["results"]]
    done = [r["dataset_id"] for r in notified if r["outcome"] == "done"]
    # (an upload's event can come twice, as from S3: the repeat is skipped downstream)
    assert sorted(done) == sorted(datasets)
    assert {r["outcome"] for r in notified} <= {"done", "skipped"}


# Per function, the statements whose removal must stop its stage: every statement moto can
# check (iam_enforced.NOT_ON_MOTO lists the others). The analyzer's PublishToPipelineBus comes
# last: the stage completes before its event is published, so a later case would be skipped.
REMOVABLE = {
    "ingestor": ["ReadObjects", "WriteObjects", "LedgerTable", "PublishToPipelineBus"],
    "analyzer": [
        "ReadObjects",
        "WriteObjects",
        "LedgerTable",
        "ReadAnalyses",
        "WriteAnalyses",
        "PublishToPipelineBus",
    ],
    "notifier": ["ReadObjects", "WriteObjects", "LedgerTable", "ReadAnalyses", "SendReportEmail"],
}
UPSTREAM = {"ingestor": [], "analyzer": ["ingestor"], "notifier": ["ingestor", "analyzer"]}
# The notifier reads the analyses table for the daily digest only (notify reads analyzed/)
THROUGH_DIGEST = {("notifier", "ReadAnalyses")}
EVENTS = Path(__file__).resolve().parents[1] / "events"


def digest_requested() -> dict[str, Any]:
    """The scheduler's `Digest Requested`, for the day up to now."""
    event: dict[str, Any] = json.loads((EVENTS / "digest_requested.json").read_text())
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return event


def test_every_statement_moto_can_check_is_in_a_removal_case(stack: moto_env.Stack) -> None:
    resolved = iam_enforced.function_statements(stack)
    removable = {**REMOVABLE, **CHUNKED_REMOVABLE, **RELEASE_REMOVABLE, **GROUPED_REMOVABLE}
    listed = {f: sorted(sids) for f, sids in removable.items()}
    # ListDataBucket: no stage lists; it only turns a missing key's 403 into a 404
    checked = {
        f: sorted(s.sid for s in statements if s.sid != "ListDataBucket")
        for f, (statements, _) in resolved.items()
    }
    assert listed == checked


@pytest.mark.parametrize("function", sorted(REMOVABLE))
def test_removing_any_one_statement_of_a_function_stops_it_with_access_denied(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    sample_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
) -> None:
    s3, sqs = enforced.admin["s3"], enforced.admin["sqs"]

    def next_input(case: int) -> dict[str, Any]:
        """The function's input event: a new upload for the ingestor (other bytes, another
        dataset); for the others, the one event the upstream functions produced."""
        if function == "ingestor" or case == 0:
            body = sample_file.read_bytes() + b"\n" * case
            s3.put_object(Bucket=stack.bucket, Key=f"raw/case-{case}.csv", Body=body)
            upstream = Run()
            for producer in UPSTREAM[function]:
                [event] = moto_env.receive(sqs, stack.queues[producer])
                deliver(enforced, producer, event, monkeypatch, upstream)
            assert upstream.problems() == []
            [event] = moto_env.receive(sqs, stack.queues[function])
            inputs.append(event)
        return inputs[-1]

    inputs: list[dict[str, Any]] = []
    not_stopped: dict[str, list[tuple[str, str]]] = {}
    for case, sid in enumerate(REMOVABLE[function]):
        # GIVEN the function's policy from the Terraform, less one statement
        event = next_input(case)
        if (function, sid) in THROUGH_DIGEST:
            event = digest_requested()
        enforced.restrict(function, without=sid)
        # WHEN its input is delivered to it
        run = Run()
        deliver(enforced, function, event, monkeypatch, run)
        run.failures += moto_env.receive(sqs, stack.queues["alerts"])
        for queue in stack.queues.values():  # nothing may go further; start clean
            moto_env.receive(sqs, queue)
        # THEN it was stopped by AccessDenied, and no email went out
        problems = run.problems()
        if not problems or not all(f == function and "AccessDenied" in p for f, p in problems):
            not_stopped[sid] = problems
        assert moto_env.sent_emails() == [], sid
    assert not_stopped == {}, not_stopped
    # AND with its whole policy back, the same inputs go through (the denial was the cause)
    enforced.restrict(function, without=None)
    run = Run()
    deliver(enforced, function, inputs[-1], monkeypatch, run)
    if function == "notifier":
        deliver(enforced, function, digest_requested(), monkeypatch, run)
    assert run.problems() == []
    outcomes = [r["outcome"] for _, result in run.results for r in result["results"]]
    assert outcomes in (["done"], ["skipped"], ["done", "done"]), outcomes
    assert len(moto_env.sent_emails()) == (2 if function == "notifier" else 0)  # report, digest


def parts_of(s3: Any, bucket: str, key: str) -> int:
    """How many parts the object was uploaded in (1: a PutObject): a multipart upload's ETag
    ends in `-<parts>`."""
    etag = str(s3.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
    return int(etag.rpartition("-")[2]) if "-" in etag else 1


@pytest.mark.timeout(900)
def test_a_file_of_many_parts_goes_through_with_enforced_iam(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    big_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the functions' multipart threshold and part size lowered to S3's smallest part
    # (5 MiB; the real 16 MiB is crossed in test_every_path_...), and the big file (~19 MB),
    # uploaded in parts of that size: every transfer of it takes four parts, first, middle
    # and last (it stood in for a 40 MB file of 800k rows, which took three parts of 16 MiB)
    monkeypatch.setattr(
        s3_adapter,
        "default_transfer_config",
        lambda: TransferConfig(
            multipart_threshold=s3_adapter.MIN_PART,
            multipart_chunksize=s3_adapter.MIN_PART,
            max_concurrency=4,
        ),
    )
    s3 = enforced.admin["s3"]
    source = big_files["big"]
    small_parts = TransferConfig(
        multipart_threshold=s3_adapter.MIN_PART, multipart_chunksize=s3_adapter.MIN_PART
    )
    started = time.perf_counter()
    s3.upload_file(str(source), stack.bucket, "raw/many-parts.csv", Config=small_parts)
    # WHEN it goes through ingest, analyze and notify, each under its own policy
    run = drain(enforced, stack, monkeypatch)
    elapsed = time.perf_counter() - started
    # THEN it was processed and reported, with no denial
    assert run.problems() == []
    [manifest] = manifests(s3, stack.bucket)
    assert manifest["status"] == "processed"
    assert manifest["counts"]["input"] == BIG_ROWS
    assert len(moto_env.sent_emails()) == 1
    # AND the upload and the processed output each took more than two parts
    assert parts_of(s3, stack.bucket, "raw/many-parts.csv") >= 3
    assert parts_of(s3, stack.bucket, manifest["outputs"]["processed_csv"]) >= 3
    print(f"\n{source.stat().st_size} bytes ingest→analyze→notify: {elapsed:.1f} s")
    assert os.environ["AWS_ACCESS_KEY_ID"] == enforced.principals["notifier"].access_key


# --- the chunked ingest (Step Functions states, tests/aws/test_aws_chunked.py) ---------------
# deleting what Plan recorded of the execution's claim (work/executions/), when it ends
RECORD_SIDS = ["DeleteExecutionRecords", "ListExecutionRecordVersions"]
CHUNKED_REMOVABLE = {
    "chunk_plan": [
        "ReadObjects",
        "WriteObjects",
        "LedgerTable",
        "PublishToPipelineBus",
        *RECORD_SIDS,
    ],
    "chunk_map": ["ReadObjects", "WriteObjects"],
    "chunk_reduce": ["ReadObjects", "WriteObjects"],
    "chunk_split": ["ReadObjects", "WriteObjects"],
    "chunk_assemble": [
        "ReadObjects",
        "WriteObjects",
        "LedgerTable",
        "PublishToPipelineBus",
        *RECORD_SIDS,
    ],
}
# Plan publishes only for an unusable upload (Data Processing Failed), and deletes its record
# only when the execution ends with it (an unusable upload, or one ingested before)
THROUGH_REJECTION = {("chunk_plan", sid) for sid in ["PublishToPipelineBus", *RECORD_SIDS]}
# the failure branch's Release (removed in the failed-execution tests below): the ledger, and
# after a failed Plan what Plan recorded of its claim, deleted once released
RELEASE_REMOVABLE = {"chunk_release": ["LedgerTable", "ReadObjects", *RECORD_SIDS]}


def execution_records(s3: Any, bucket: str) -> list[str]:
    """Every stored version and delete marker under work/executions/ (Plan's records)."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix="work/executions/")
    return [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]


# the grouped analysis's functions (stages/grouped_analyze.py, grouped_merge.py)
GROUPED_REMOVABLE = {
    "analyze_prepare": [
        "PublishToPipelineBus",
        "ReadObjects",
        "WriteObjects",
        "LedgerTable",
        "ReadAnalyses",
    ],
    "analyze_group": ["ReadObjects", "WriteObjects"],
    "analyze_merge": [
        "ReadObjects",
        "WriteObjects",
        "LedgerTable",
        "ReadAnalyses",
        "WriteAnalyses",
        "PublishToPipelineBus",
    ],
    "analyze_release": ["LedgerTable"],
}
# Prepare publishes only when it replays a finished analysis's event
THROUGH_REPLAY = {("analyze_prepare", "PublishToPipelineBus")}


@pytest.mark.timeout(900)
def test_the_chunked_ingest_runs_under_each_function_s_own_policy_and_no_less(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import importlib

    from test_aws_chunked import EXECUTION, Walker, _asl

    from healthpipe.events import object_created
    from healthpipe.lambdas import FUNCTIONS

    modules = {f: importlib.import_module(f"healthpipe.lambdas.{f}") for f in CHUNKED_REMOVABLE}
    for name, module in modules.items():
        module._function.reset()
        module._function.workdir = tmp_path / f"lambda-{name}"
    s3 = enforced.admin["s3"]
    calls: dict[str, dict[str, Any]] = {}

    class AsItsRole(Walker):
        def invoke(self, arn: str, payload: dict[str, Any]) -> Any:
            function = arn.rsplit(":", 1)[-1].removeprefix("healthpipe-")
            for key, value in enforced.principals[function].env().items():
                monkeypatch.setenv(key, value)
            calls.setdefault(function, json.loads(json.dumps(payload)))
            return super().invoke(arn, payload)

    def upload(key: str, body: bytes) -> dict[str, Any]:
        version = s3.put_object(Bucket=stack.bucket, Key=key, Body=body)["VersionId"]
        return object_created(stack.bucket, key, version, len(body)).to_dict()

    source = generate_csv(SyntheticSpec(rows=120, users=3, seed=5), tmp_path / "in.csv")
    definition = _asl().render(
        _asl().STATEMACHINE / "chunked_ingest.asl.json.tftpl",
        {"chunk_bytes": "2048", "buckets": "2"},
    )
    try:
        # GIVEN each function's Terraform statements (moto enforcing them)
        # WHEN an upload goes through the states in the definition's order
        # THEN it is assembled: every call the five functions make is allowed
        event = upload("raw/large.csv", source.read_bytes())
        outcome = AsItsRole(s3).run(definition, event, {"Execution": {"Id": EXECUTION}})
        assert outcome["state"] == "Assemble", outcome
        assert set(calls) == set(CHUNKED_REMOVABLE)
        # AND Assemble deleted what Plan recorded for the execution, every version of it
        assert execution_records(s3, stack.bucket) == []
        # AND without any one statement, its function fails (access denied)
        for function, sids in CHUNKED_REMOVABLE.items():
            handler = modules[function].handler
            for case, sid in enumerate(sids, start=1):
                payload = calls[function]
                if function == "chunk_plan":  # new bytes (a new claim), or an unusable file
                    body = source.read_bytes() + b"\n" * case
                    if (function, sid) in THROUGH_REJECTION:
                        body = b"not,a\nvitals file\n"
                    payload = {**payload, "event": upload(f"raw/case-{case}.csv", body)}
                for key, value in enforced.principals[function].env().items():
                    monkeypatch.setenv(key, value)
                enforced.restrict(function, sid)
                try:
                    with pytest.raises(Exception, match=r"(?i)denied|forbidden|403"):
                        handler(json.loads(json.dumps(payload)))
                finally:
                    enforced.restrict(function, None)
        assert all(FUNCTIONS[f].handler.startswith("healthpipe.lambdas.") for f in calls)
    finally:
        for module in modules.values():
            module._function.reset()
            module._function.workdir = None


@pytest.mark.timeout(300)
def test_a_failed_chunked_execution_releases_its_claim_and_the_same_upload_goes_through(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import importlib

    from test_aws_chunked import EXECUTION, Walker, _asl

    from healthpipe.errors import PermanentError
    from healthpipe.events import object_created
    from healthpipe.stages import chunked

    functions = [*CHUNKED_REMOVABLE, "chunk_release"]
    modules = {f: importlib.import_module(f"healthpipe.lambdas.{f}") for f in functions}
    for name, module in modules.items():
        module._function.reset()
        module._function.workdir = tmp_path / f"lambda-{name}"
    admin = enforced.admin

    class AsItsRole(Walker):
        def invoke(self, arn: str, payload: dict[str, Any]) -> Any:
            function = arn.rsplit(":", 1)[-1].removeprefix("healthpipe-")
            for key, value in enforced.principals[function].env().items():
                monkeypatch.setenv(key, value)
            return super().invoke(arn, payload)

    stage = chunked.stage

    def second_chunk_fails(step: Any, ports: Any) -> Any:
        if step.chunk.index == 1:
            raise PermanentError("chunk 1 cannot be read")
        return stage(step, ports)

    source = generate_csv(SyntheticSpec(rows=60, users=2, seed=9), tmp_path / "in.csv")
    body = source.read_bytes()
    version = admin["s3"].put_object(Bucket=stack.bucket, Key="raw/large.csv", Body=body)
    event = object_created(stack.bucket, "raw/large.csv", version["VersionId"], len(body))
    definition = _asl().render(
        _asl().STATEMACHINE / "chunked_ingest.asl.json.tftpl",
        {"chunk_bytes": "1024", "buckets": "2"},
    )
    try:
        # GIVEN an upload whose second chunk fails in Map A (each function under its policy)
        monkeypatch.setattr(chunked, "stage", second_chunk_fails)
        walker = AsItsRole(admin["s3"], admin["events"])
        failed = walker.run(definition, event.to_dict(), {"Execution": {"Id": EXECUTION}})
        # THEN the execution took the failure branch: claim released, then the failure event
        assert failed["status"] == "Fail" and failed["state"] == "Failed", failed
        assert walker.ran[-3:] == ["ReleaseClaim", "ChunksFailed", "Failed"]
        assert walker.outputs["ReleaseClaim"]["error"]["Error"] == "MapFailed"
        assert execution_records(admin["s3"], stack.bucket) == []  # deleted by the release
        job = walker.outputs["Plan"]["job"]
        assert job["chunks"] >= 2
        ledger_key = {"pk": {"S": f"ingest:{job['sha256']}"}}
        item = admin["dynamodb"].get_item(
            TableName=stack.ledger_table, Key=ledger_key, ConsistentRead=True
        )
        assert "Item" not in item  # no claim left to wait out
        alerts = moto_env.receive(admin["sqs"], stack.queues["alerts"])
        assert [e["detail-type"] for e in alerts] == [c.PROCESSING_FAILED]
        assert alerts[0]["detail"]["error_code"] == "chunked_failed"
        # AND releasing again (a retried Release, or another execution's) changes nothing
        release = modules["chunk_release"].handler
        for key, value in enforced.principals["chunk_release"].env().items():
            monkeypatch.setenv(key, value)
        again = release({"job": job, "execution": EXECUTION})
        assert again["outcome"] == "not_held"
        # WHEN the same upload starts a second execution, the chunk readable again
        monkeypatch.setattr(chunked, "stage", stage)
        second = AsItsRole(admin["s3"], admin["events"]).run(
            definition, event.to_dict(), {"Execution": {"Id": EXECUTION + "-2"}}
        )
        # THEN it is ingested (not skipped as in progress), its record deleted
        assert second["state"] == "Assemble", second
        assert execution_records(admin["s3"], stack.bucket) == []
        item = admin["dynamodb"].get_item(
            TableName=stack.ledger_table, Key=ledger_key, ConsistentRead=True
        )
        assert item["Item"]["status"]["S"] == "completed"
        # AND a Release by the first execution now leaves the completed claim as it is
        assert release({"job": job, "execution": EXECUTION})["outcome"] == "not_held"
        item = admin["dynamodb"].get_item(
            TableName=stack.ledger_table, Key=ledger_key, ConsistentRead=True
        )
        assert item["Item"]["status"]["S"] == "completed"
        # AND without its ledger statement, Release is denied
        enforced.restrict("chunk_release", "LedgerTable")
        try:
            with pytest.raises(Exception, match=r"(?i)denied|forbidden|403"):
                release({"job": job, "execution": EXECUTION})
        finally:
            enforced.restrict("chunk_release", None)
    finally:
        for module in modules.values():
            module._function.reset()
            module._function.workdir = None


class Killed(BaseException):
    """The Lambda runtime ending an invocation (timeout, out of memory): no `except
    Exception` of the code runs, Step Functions sees the task fail."""


class TaskTimedOut(Exception):
    """What the state machine gets from a killed invocation (Sandbox.Timedout and the like)."""


@pytest.mark.timeout(300)
def test_a_plan_killed_after_its_claim_releases_it_and_the_same_upload_goes_through(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import importlib

    from test_aws_chunked import EXECUTION, Walker, _asl

    from healthpipe.events import object_created
    from healthpipe.stages import chunked

    functions = [*CHUNKED_REMOVABLE, "chunk_release"]
    modules = {f: importlib.import_module(f"healthpipe.lambdas.{f}") for f in functions}
    for name, module in modules.items():
        module._function.reset()
        module._function.workdir = tmp_path / f"lambda-{name}"
    admin = enforced.admin

    class AsItsRole(Walker):
        def invoke(self, arn: str, payload: dict[str, Any]) -> Any:
            function = arn.rsplit(":", 1)[-1].removeprefix("healthpipe-")
            for key, value in enforced.principals[function].env().items():
                monkeypatch.setenv(key, value)
            try:
                return super().invoke(arn, payload)
            except Killed as killed:
                raise TaskTimedOut(str(killed)) from None

    plan_claimed = chunked._plan_claimed

    def killed_after_the_claim(*args: Any, **kwargs: Any) -> Any:
        raise Killed("Task timed out after 900.00 seconds")

    source = generate_csv(SyntheticSpec(rows=60, users=2, seed=11), tmp_path / "in.csv")
    body = source.read_bytes()
    version = admin["s3"].put_object(Bucket=stack.bucket, Key="raw/killed.csv", Body=body)
    event = object_created(stack.bucket, "raw/killed.csv", version["VersionId"], len(body))
    definition = _asl().render(
        _asl().STATEMACHINE / "chunked_ingest.asl.json.tftpl",
        {"chunk_bytes": "1024", "buckets": "2"},
    )
    ledger_key = {"pk": {"S": f"ingest:{hashlib.sha256(body).hexdigest()}"}}
    release = modules["chunk_release"].handler
    try:
        # GIVEN a Plan that claims the upload, then is killed (timeout, out of memory)
        monkeypatch.setattr(chunked, "_plan_claimed", killed_after_the_claim)
        killed = EXECUTION + "-plan-killed"
        walker = AsItsRole(admin["s3"], admin["events"])
        failed = walker.run(definition, event.to_dict(), {"Execution": {"Id": killed}})
        # THEN the execution released the claim Plan had taken, then published the failure
        assert failed["status"] == "Fail" and failed["state"] == "Failed", failed
        assert walker.ran == ["Plan", "ReleasePlanClaim", "PlanFailed", "Failed"]
        assert "release_error" not in failed["output"], failed
        # AND the record it released from is deleted, every version of it
        assert execution_records(admin["s3"], stack.bucket) == []
        item = admin["dynamodb"].get_item(
            TableName=stack.ledger_table, Key=ledger_key, ConsistentRead=True
        )
        assert "Item" not in item  # no claim left to wait out
        alerts = moto_env.receive(admin["sqs"], stack.queues["alerts"])
        assert [e["detail-type"] for e in alerts] == [c.PROCESSING_FAILED]
        assert alerts[0]["detail"]["error_code"] == "chunked_plan_failed"
        assert alerts[0]["detail"]["error"] == "TaskTimedOut"
        # AND a release for an execution whose Plan failed before claiming finds none
        for key, value in enforced.principals["chunk_release"].env().items():
            monkeypatch.setenv(key, value)
        assert release({"execution": EXECUTION + "-never-claimed"})["outcome"] == "not_held"
        # WHEN the same upload starts a second execution, Plan working again
        monkeypatch.setattr(chunked, "_plan_claimed", plan_claimed)
        second = AsItsRole(admin["s3"], admin["events"]).run(
            definition, event.to_dict(), {"Execution": {"Id": EXECUTION + "-plan-again"}}
        )
        # THEN it is ingested at once (not skipped as in progress)
        assert second["state"] == "Assemble", second
        item = admin["dynamodb"].get_item(
            TableName=stack.ledger_table, Key=ledger_key, ConsistentRead=True
        )
        assert item["Item"]["status"]["S"] == "completed"
        # AND the killed execution's release, retried, leaves the completed claim as it is
        for key, value in enforced.principals["chunk_release"].env().items():
            monkeypatch.setenv(key, value)
        assert release({"execution": killed})["outcome"] == "not_held"
        assert (
            admin["dynamodb"].get_item(
                TableName=stack.ledger_table, Key=ledger_key, ConsistentRead=True
            )["Item"]["status"]["S"]
            == "completed"
        )
        assert execution_records(admin["s3"], stack.bucket) == []
        # AND without reading what Plan recorded, or deleting it, the release is denied
        for sid in ("ReadObjects", *RECORD_SIDS):
            enforced.restrict("chunk_release", sid)
            try:
                with pytest.raises(Exception, match=r"(?i)denied|forbidden|403"):
                    release({"execution": killed})
            finally:
                enforced.restrict("chunk_release", None)
    finally:
        for module in modules.values():
            module._function.reset()
            module._function.workdir = None


@pytest.mark.timeout(600)
def test_the_grouped_analysis_runs_under_each_function_s_own_policy_and_no_less(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    enforced: Enforced,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import importlib

    from test_aws_chunked import Walker, _asl

    from healthpipe.adapters.aws.ledger import DynamoLedger
    from healthpipe.stages.base import ExecutionClaim

    execution = "arn:aws:states:us-east-1:123456789012:execution:healthpipe-grouped-analyze:i1"
    modules = {f: importlib.import_module(f"healthpipe.lambdas.{f}") for f in GROUPED_REMOVABLE}
    for name, module in modules.items():
        module._function.reset()
        module._function.workdir = tmp_path / f"lambda-{name}"
    admin = enforced.admin
    calls: dict[str, dict[str, Any]] = {}

    class AsItsRole(Walker):
        def invoke(self, arn: str, payload: dict[str, Any]) -> Any:
            function = arn.rsplit(":", 1)[-1].removeprefix("healthpipe-")
            for key, value in enforced.principals[function].env().items():
                monkeypatch.setenv(key, value)
            calls.setdefault(function, json.loads(json.dumps(payload)))
            return super().invoke(arn, payload)

    # GIVEN a processed file (the ingestor under its own policy), three participants
    source = generate_csv(SyntheticSpec(rows=120, users=3, seed=5), tmp_path / "in.csv")
    admin["s3"].put_object(Bucket=stack.bucket, Key="raw/in.csv", Body=source.read_bytes())
    [created] = moto_env.receive(admin["sqs"], stack.queues["ingestor"])
    run = Run()
    deliver(enforced, "ingestor", created, monkeypatch, run)
    assert run.dead_letters == []
    [complete] = moto_env.receive(admin["sqs"], stack.queues["analyzer"])
    dataset_id = complete["detail"]["dataset_id"]
    key = {"pk": {"S": f"analyze:{dataset_id}"}}
    definition = _asl().render(
        _asl().STATEMACHINE / "grouped_analyze.asl.json.tftpl", {"group_rows": "80"}
    )
    try:
        # WHEN it goes through the states in the definition's order, each function under
        # its Terraform statements THEN it is analysed: every call they make is allowed
        context = {"Execution": {"Id": execution, "Input": complete}}
        outcome = AsItsRole(admin["s3"]).run(definition, complete, context)
        assert outcome["state"] == "Merge", outcome
        assert set(calls) == set(GROUPED_REMOVABLE) - {"analyze_release"}
        calls["analyze_release"] = {"job": calls["analyze_merge"]["job"], "execution": execution}
        completed = admin["dynamodb"].get_item(
            TableName=stack.ledger_table, Key=key, ConsistentRead=True
        )["Item"]
        ledger = DynamoLedger(stack.ledger_table, admin["dynamodb"], lease_seconds=600)

        def claim(state: str) -> None:
            """The analysis's claim as the case needs it: completed (Prepare replays),
            held by the execution (Merge, Release), or none (Prepare claims)."""
            admin["dynamodb"].delete_item(TableName=stack.ledger_table, Key=key)
            if state == "completed":
                admin["dynamodb"].put_item(TableName=stack.ledger_table, Item=completed)
            elif state == "held":
                assert ExecutionClaim(ledger, f"analyze:{dataset_id}", execution).take() is None

        # AND without any one statement, its function fails (access denied)
        for function, sids in GROUPED_REMOVABLE.items():
            for sid in sids:
                if function == "analyze_prepare":
                    claim("completed" if (function, sid) in THROUGH_REPLAY else "none")
                elif function in ("analyze_merge", "analyze_release"):
                    claim("held")
                for name, value in enforced.principals[function].env().items():
                    monkeypatch.setenv(name, value)
                enforced.restrict(function, sid)
                try:
                    with pytest.raises(Exception, match=r"(?i)denied|forbidden|403"):
                        modules[function].handler(json.loads(json.dumps(calls[function])))
                finally:
                    enforced.restrict(function, None)
    finally:
        for module in modules.values():
            module._function.reset()
            module._function.workdir = None
