"""The same reliability properties on the AWS adapters (S3, DynamoDB ledger and analyses,
SES), on a moto server over HTTP: the stages are called as the Lambda handlers call them.

GIVEN an upload's event delivered 10 times (one after the other, or to 10 containers at once)
THEN each stage works once, one email goes through SES, each output object has one version.
GIVEN a claim left by a crashed container
THEN it blocks others while its lease runs, and is taken over once the lease has expired.
GIVEN a transient fault in S3, DynamoDB or SES during a stage
THEN the stage raises (Lambda retries), its claim is released, and the retry completes once.

Through the Lambda handlers:
GIVEN a permanent fault (the analyzer's input object is gone)
THEN the invocation ends without a retry, `Data Analysis Failed` says so (retryable false),
the claim is released, and replaying the event once the object is back completes once.
GIVEN an ingestor invocation killed (SIGKILL) mid-stage, its downloaded file left in /tmp
THEN the next invocation in that environment removes it first and leaves /tmp clean.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import moto_env
import pytest
from lambda_harness import HANDLERS
from rel_helpers import make_input

from healthpipe.adapters.aws.ledger import DynamoLedger
from healthpipe.adapters.aws.mailer import SesMailer
from healthpipe.adapters.aws.s3 import S3ObjectStore
from healthpipe.bootstrap import build_aws
from healthpipe.config import Settings, load_settings
from healthpipe.errors import TransientError
from healthpipe.events import Event, object_created
from healthpipe.lambdas.runtime import INVOCATIONS
from healthpipe.stages.analyze import analyze
from healthpipe.stages.base import Ports, StageResult
from healthpipe.stages.ingest import ingest
from healthpipe.stages.notify import notify

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("rel_aws")

COPIES = 10
Stage = Callable[[Event, Ports], StageResult]
STAGES: tuple[Stage, ...] = (ingest, analyze, notify)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    yield from moto_env.moto_server()


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return moto_env.clients(moto_endpoint)


@pytest.fixture
def stack(aws: dict[str, Any]) -> moto_env.Stack:
    return moto_env.create_stack(aws)


@pytest.fixture
def aws_settings(stack: moto_env.Stack, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MPLCONFIGDIR", str(Path.cwd() / "mpl"))
    return load_settings({})


def container(settings: Settings, aws: dict[str, Any], workdir: Path) -> Ports:
    """The ports one Lambda container builds (its own ledger owner)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return build_aws(settings, clients=aws, workdir=workdir)


def upload_event(aws: dict[str, Any], stack: moto_env.Stack, source: Path) -> Event:
    key = f"raw/{source.name}"
    put = aws["s3"].put_object(Bucket=stack.bucket, Key=key, Body=source.read_bytes())
    return object_created(stack.bucket, key, put["VersionId"], source.stat().st_size)


def report_emails() -> list[str]:
    subjects = [str(m.raw_data).split("Subject:", 1)[-1][:80] for m in moto_env.sent_emails()]
    return [s for s in subjects if "[ALERT]" not in s]


def versions_per_key(aws: dict[str, Any], bucket: str, prefix: str) -> Counter[str]:
    listed = aws["s3"].list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", [])
    return Counter(v["Key"] for v in listed)


def ledger_statuses(aws: dict[str, Any], table: str) -> dict[str, str]:
    items = aws["dynamodb"].scan(TableName=table)["Items"]
    return {i["pk"]["S"]: i["status"]["S"] for i in items}


def summaries(aws: dict[str, Any], table: str) -> int:
    items = aws["dynamodb"].scan(TableName=table)["Items"]
    return sum(1 for i in items if i["sk"]["S"] == "SUMMARY")


def assert_once(aws: dict[str, Any], stack: moto_env.Stack) -> None:
    assert len(report_emails()) == 1
    assert summaries(aws, stack.analyses_table) == 1
    statuses = ledger_statuses(aws, stack.ledger_table)
    assert len(statuses) == 3 and set(statuses.values()) == {"completed"}, statuses


def race(workers: list[Ports], stage: Stage, event: Event) -> list[StageResult]:
    barrier = threading.Barrier(len(workers))
    results: list[StageResult] = []
    errors: list[BaseException] = []

    def work(ports: Ports) -> None:
        barrier.wait(timeout=30)
        try:
            results.append(stage(event, ports))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    return results


def test_aws_event_delivered_ten_times_is_processed_once(
    aws: dict[str, Any], stack: moto_env.Stack, aws_settings: Settings, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    event = upload_event(aws, stack, source)
    ports = container(aws_settings, aws, tmp_path / "lambda")
    for stage in STAGES:
        results = [stage(event, ports) for _ in range(COPIES)]
        assert [r.outcome for r in results] == ["done"] + ["skipped"] * (COPIES - 1)
        if results[0].events:
            replays = {r.events[0].detail["dataset_id"] for r in results}
            assert replays == {results[0].events[0].detail["dataset_id"]}
            event = results[0].events[0]
    assert_once(aws, stack)
    for prefix in ("processed/", "rejected/", "manifests/", "analyzed/", "reports/"):
        versions = versions_per_key(aws, stack.bucket, prefix)
        assert versions and set(versions.values()) == {1}, (prefix, versions)


def test_aws_ten_containers_at_once_one_does_the_work(
    aws: dict[str, Any], stack: moto_env.Stack, aws_settings: Settings, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    event = upload_event(aws, stack, source)
    workers = [container(aws_settings, aws, tmp_path / f"lambda-{i}") for i in range(COPIES)]
    assert len({w.ledger.owner for w in workers}) == COPIES
    for stage in STAGES:
        results = race(workers, stage, event)
        outcomes = Counter(r.outcome for r in results)
        assert outcomes["done"] == 1, outcomes
        assert outcomes["skipped"] + outcomes["in_progress"] == COPIES - 1
        done = next(r for r in results if r.outcome == "done")
        if done.events:
            event = done.events[0]
    assert_once(aws, stack)
    assert set(versions_per_key(aws, stack.bucket, "processed/").values()) == {1}


def test_aws_claim_of_a_crashed_container_blocks_until_its_lease_expires(
    aws: dict[str, Any], stack: moto_env.Stack, aws_settings: Settings, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    event = upload_event(aws, stack, source)
    ports = container(aws_settings, aws, tmp_path / "lambda")
    assert isinstance(ports.ledger, DynamoLedger)
    ingested = ingest(event, ports)
    analyzed = analyze(ingested.events[0], ports)
    dataset_id = analyzed.events[0].detail["dataset_id"]
    # a notifier container claimed the report, then crashed (timeout, OOM): its lease runs
    crashed = DynamoLedger(stack.ledger_table, aws["dynamodb"], lease_seconds=60.0)
    crashed.owner = "169.254.0.9:1:crashed1"
    assert crashed.claim(f"notify:{dataset_id}").acquired

    blocked = notify(analyzed.events[0], ports)

    assert blocked.outcome == "in_progress"
    assert report_emails() == []
    # WHEN the lease has expired (claimed long ago), the next delivery takes it over
    aws["dynamodb"].delete_item(
        TableName=stack.ledger_table, Key={"pk": {"S": f"notify:{dataset_id}"}}
    )
    assert crashed.claim(f"notify:{dataset_id}", now=time.time() - 3600).acquired

    taken = notify(analyzed.events[0], ports)

    assert taken.outcome == "done"
    record = ports.ledger.get(f"notify:{dataset_id}")
    assert record is not None and record.attempts == 2 and record.status == "completed"
    assert_once(aws, stack)


class FlakyS3(S3ObjectStore):
    def __init__(self, base: S3ObjectStore, fail_times: int) -> None:
        self.__dict__.update(base.__dict__)
        self.fail_times = fail_times

    def _get_bytes(self, key: str) -> bytes:
        if self.fail_times:
            self.fail_times -= 1
            raise TransientError("S3 SlowDown (injected)")
        return super()._get_bytes(key)


class FlakyLedger(DynamoLedger):
    def __init__(self, base: DynamoLedger, fail_times: int) -> None:
        self.__dict__.update(base.__dict__)
        self.fail_times = fail_times

    def _complete(self, key: str, owner: str, result: dict[str, Any]) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise TransientError("ProvisionedThroughputExceeded (injected)")
        super()._complete(key, owner, result)


class FlakySes(SesMailer):
    def __init__(self, base: SesMailer, fail_times: int) -> None:
        self.__dict__.update(base.__dict__)
        self.fail_times = fail_times

    def _send(self, message: EmailMessage, name: str) -> str:
        if self.fail_times:
            self.fail_times -= 1
            raise TransientError("SES Throttling (injected)")
        return super()._send(message, name)


FAULTS: dict[str, Callable[[Ports], None]] = {
    "s3-get": lambda p: setattr(p, "store", FlakyS3(p.store, 1)),  # type: ignore[arg-type]
    "dynamodb-complete": lambda p: setattr(p, "ledger", FlakyLedger(p.ledger, 1)),  # type: ignore[arg-type]
    "ses-send": lambda p: setattr(p, "mailer", FlakySes(p.mailer, 1)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_aws_transient_fault_releases_the_claim_and_the_retry_completes_once(
    fault: str,
    aws: dict[str, Any],
    stack: moto_env.Stack,
    aws_settings: Settings,
    tmp_path: Path,
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    event: Event | None = upload_event(aws, stack, source)
    ports = container(aws_settings, aws, tmp_path / "lambda")
    FAULTS[fault](ports)
    failures = 0
    for stage in STAGES:
        assert event is not None
        for _attempt in range(3):  # Lambda's async retries
            try:
                result = stage(event, ports)
            except TransientError:
                failures += 1
                continue
            assert result.outcome == "done"
            break
        event = result.events[0] if result.events else None
    assert failures == 1
    assert_once(aws, stack)


# --- through the Lambda handlers ---------------------------------------------------------
@pytest.fixture
def lambda_env(
    stack: moto_env.Stack, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """The environment a Lambda function sees; yields the functions' /tmp (one per function)."""
    for name, value in {
        **stack.env(),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": moto_env.REGION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, module in HANDLERS.items():
        module._function.reset()
        module._function.workdir = tmp_path / "tmp" / name
    yield tmp_path / "tmp"
    for module in HANDLERS.values():
        module._function.reset()
        module._function.workdir = None


def deliver(aws: dict[str, Any], stack: moto_env.Stack, function: str) -> list[dict[str, Any]]:
    """Every event queued for `function`, run through its handler; the results."""
    return [
        HANDLERS[function].handler(moto_env.as_s3_sends_it(event), None)
        for event in moto_env.receive(aws["sqs"], stack.queues[function])
    ]


def test_aws_permanent_fault_ends_without_retry_and_the_replay_completes_once(
    aws: dict[str, Any], stack: moto_env.Stack, lambda_env: Path, tmp_path: Path
) -> None:
    # GIVEN a file ingested, whose processed Parquet is then lost (every version)
    source = make_input(tmp_path / "vitals.csv")
    aws["s3"].upload_file(str(source), stack.bucket, "raw/vitals.csv")
    assert [r["results"][0]["outcome"] for r in deliver(aws, stack, "ingestor")] == ["done"]
    [analyze_event] = moto_env.receive(aws["sqs"], stack.queues["analyzer"])
    parquet = analyze_event["detail"]["processed_key"]
    kept = aws["s3"].get_object(Bucket=stack.bucket, Key=parquet)["Body"].read()
    for version in aws["s3"].list_object_versions(Bucket=stack.bucket, Prefix=parquet)["Versions"]:
        aws["s3"].delete_object(Bucket=stack.bucket, Key=parquet, VersionId=version["VersionId"])
    # WHEN the analyzer gets the event: a missing object, no retry can help
    result = HANDLERS["analyzer"].handler(analyze_event, None)
    # THEN the invocation ends normally (no Lambda retry, no dead letter)
    [outcome] = result["results"]
    assert outcome["outcome"] == "failed"
    # AND Data Analysis Failed says why, and that retrying will not help
    [failed] = moto_env.receive(aws["sqs"], stack.queues["alerts"])
    assert failed["detail-type"] == "Data Analysis Failed"
    assert failed["detail"]["retryable"] is False
    assert failed["detail"]["dataset_id"] == analyze_event["detail"]["dataset_id"]
    assert parquet in failed["detail"]["error"]
    # AND the analyze claim was released: nothing is left in progress
    statuses = ledger_statuses(aws, stack.ledger_table)
    assert "in_progress" not in statuses.values(), statuses
    assert moto_env.receive(aws["sqs"], stack.queues["notifier"]) == []
    # WHEN the object is restored and the same event replayed (docs/operations.md)
    aws["s3"].put_object(Bucket=stack.bucket, Key=parquet, Body=kept)
    replayed = HANDLERS["analyzer"].handler(analyze_event, None)
    assert [r["outcome"] for r in replayed["results"]] == ["done"]
    deliver(aws, stack, "notifier")
    # THEN the file is analysed and reported exactly once
    assert_once(aws, stack)
    assert moto_env.receive(aws["sqs"], stack.queues["alerts"]) == []


# A child process: the ingestor downloads the object, then dies (SIGKILL) mid-stage.
KILLED_DURING_INGEST = """
import json, os, signal, sys
from pathlib import Path
from healthpipe.adapters.aws.s3 import S3ObjectStore
from healthpipe.lambdas import ingestor

real = S3ObjectStore._download

def download_then_die(self, key, workdir, version):
    real(self, key, workdir, version)
    os.kill(os.getpid(), signal.SIGKILL)

S3ObjectStore._download = download_then_die
ingestor._function.workdir = Path(sys.argv[1])
ingestor.handler(json.loads(sys.argv[2]), None)
"""


def test_aws_invocation_killed_mid_stage_leaves_tmp_that_the_next_one_clears(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    lambda_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_input(tmp_path / "vitals.csv", rows=5000)
    aws["s3"].upload_file(str(source), stack.bucket, "raw/vitals.csv")
    [event] = moto_env.receive(aws["sqs"], stack.queues["ingestor"])
    event = moto_env.as_s3_sends_it(event)
    invocations = lambda_env / "ingestor" / INVOCATIONS
    # GIVEN an ingestor killed by Lambda (timeout, out of memory) after its download
    workdir = HANDLERS["ingestor"]._function.workdir
    child = subprocess.run(
        [sys.executable, "-c", KILLED_DURING_INGEST, str(workdir), json.dumps(event)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    [left] = list(invocations.iterdir())
    left_bytes = sum(p.stat().st_size for p in left.rglob("*") if p.is_file())
    assert left_bytes >= source.stat().st_size  # the download stayed in /tmp
    # WHEN the retry runs in the same execution environment (same /tmp)
    used: list[Path] = []
    real = S3ObjectStore._download

    def spy(self: S3ObjectStore, key: str, workdir: Path, version: Any) -> Any:
        used.append(workdir)
        assert not left.exists()  # removed before the work started
        return real(self, key, workdir, version)

    monkeypatch.setattr(S3ObjectStore, "_download", spy)
    result = HANDLERS["ingestor"].handler(event, None)
    # THEN it worked in a fresh directory under invocations/, and /tmp is clean after it
    assert [r["outcome"] for r in result["results"]] == ["done"]
    assert used and all(invocations in w.parents for w in used)
    assert not any(left in w.parents or w == left for w in used)
    assert list(invocations.iterdir()) == []
