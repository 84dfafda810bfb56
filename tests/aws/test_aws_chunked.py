"""The chunked ingest's Lambda handlers against the moto S3 server, driven in the order the
state machine gives (infra/terraform/statemachine/chunked_ingest.asl.json.tftpl, walked from
StartAt through Next, Choice and each Map's ItemProcessor: not a hand-written list), and
compared with the single-file path on the same file: the same processed CSV and rejected
CSV bytes, the same Parquet rows, the same counts; then the claim, the manifest, the event."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import moto_env
import pytest

from healthpipe import constants as c
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.errors import PermanentError
from healthpipe.events import object_created
from healthpipe.lambdas import FUNCTIONS, chunk_map, chunk_plan
from healthpipe.synthetic import SyntheticSpec, generate_csv

ROOT = Path(__file__).resolve().parents[2]
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:healthpipe-chunked-ingest:t1"
CHUNK_BYTES = 8192
STEPS = [name for name in FUNCTIONS if name.startswith("chunk_")]


def _asl() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate_asl", ROOT / "scripts/validate_asl.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("validate_asl", module)
    spec.loader.exec_module(module)
    return module


# --- a small interpreter of the states this definition uses -------------------------------
class MapFailed(Exception):
    """A Map's item failed (States.ExceedToleratedFailureThreshold, with 0 % tolerated)."""


class Walker:
    """Runs the rendered definition: Task (lambda:invoke) calls the handler of the function
    its ARN names, Task (events:putEvents) puts the entries on the bus (with `events`);
    Choice (StringEquals); Map (ItemReader s3:getObject JSON, ItemSelector, the
    ItemProcessor run per item: a failed item fails the Map); a state's Catch (the error's
    name or States.ALL) goes on with the error at its ResultPath (retries are not
    repeated); Succeed / Fail end. Records the states it ran."""

    def __init__(self, s3: Any, events: Any = None) -> None:
        self.s3 = s3
        self.events = events
        self.ran: list[str] = []
        self.outputs: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []

    def _path(self, expression: str, data: Any, context: dict[str, Any]) -> Any:
        root, rest = (context, expression[3:]) if expression.startswith("$$.") else (data, "")
        if not rest:
            rest = expression[2:] if expression.startswith("$.") else ""
        for part in filter(None, rest.split(".")):
            root = root[part]
        return root

    def resolve(self, template: Any, data: Any, context: dict[str, Any]) -> Any:
        if isinstance(template, list):
            return [self.resolve(value, data, context) for value in template]
        if not isinstance(template, dict):
            return template
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = self.path(value, data, context)
            else:
                out[key] = self.resolve(value, data, context)
        return out

    def path(self, expression: str, data: Any, context: dict[str, Any]) -> Any:
        if expression.startswith("States.Format("):  # the one intrinsic (PlanFailed's)
            return "(formatted)"
        return self._path(expression, data, context)

    def put_events(self, parameters: dict[str, Any]) -> dict[str, Any]:
        entries = [
            {
                "EventBusName": entry["EventBusName"],
                "Source": entry["Source"],
                "DetailType": entry["DetailType"],
                "Detail": json.dumps(entry["Detail"]),
            }
            for entry in parameters["Entries"]
        ]
        self.published.extend(parameters["Entries"])
        if self.events is not None:
            self.events.put_events(Entries=entries)
        return {"FailedEntryCount": 0}

    def caught(self, state: dict[str, Any], error: Exception, data: Any) -> tuple[str, Any]:
        """The Catch that takes `error` (re-raised when none does): its Next and the
        state's input with {Error, Cause} at its ResultPath."""
        name = type(error).__name__
        for catch in state.get("Catch", []):
            if name in catch["ErrorEquals"] or "States.ALL" in catch["ErrorEquals"]:
                failure = {"Error": name, "Cause": str(error)[:200]}
                where = catch.get("ResultPath", "$")
                output = failure if where == "$" else {**data, where.removeprefix("$."): failure}
                return catch["Next"], output
        raise error

    def invoke(self, arn: str, payload: dict[str, Any]) -> Any:
        name = arn.rsplit(":", 1)[-1].removeprefix("healthpipe-")
        handler = importlib.import_module(FUNCTIONS[name].handler.rsplit(".", 1)[0]).handler
        # through JSON both ways, as Lambda passes them
        return json.loads(json.dumps(handler(json.loads(json.dumps(payload)))))

    def run(self, machine: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            self.ran.append(name)
            kind = state["Type"]
            if kind in ("Succeed", "Fail"):
                return {"status": kind, "state": name, "output": data}
            if kind == "Choice":
                name = next(
                    (
                        choice["Next"]
                        for choice in state["Choices"]
                        if self.path(choice["Variable"], data, context) == choice["StringEquals"]
                    ),
                    state["Default"],
                )
                continue
            try:
                result = self.state_result(name, state, data, context)
            except Exception as error:  # the state's Catch decides
                name, data = self.caught(state, error, data)
                continue
            if "ResultSelector" in state:
                result = self.resolve(state["ResultSelector"], result, context)
            where = state.get("ResultPath", "$")
            if where is None:
                output = data
            elif where == "$":
                output = result
            else:
                output = {**data, where.removeprefix("$."): result}
            if "OutputPath" in state:
                output = self.path(state["OutputPath"], output, context)
            self.outputs[name] = output
            if state.get("End"):
                return {"status": "Succeed", "state": name, "output": output}
            data, name = output, state["Next"]

    def state_result(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any]
    ) -> Any:
        """The result of a Task or Map state (raises the error that fails it)."""
        if state["Type"] == "Task":
            parameters = self.resolve(state["Parameters"], data, context)
            if state["Resource"] == "arn:aws:states:::events:putEvents":
                return self.put_events(parameters)
            assert state["Resource"] == "arn:aws:states:::lambda:invoke", name
            return {"Payload": self.invoke(parameters["FunctionName"], parameters["Payload"])}
        assert state["Type"] == "Map", name
        reader = self.resolve(state["ItemReader"]["Parameters"], data, context)
        body = self.s3.get_object(Bucket=reader["Bucket"], Key=reader["Key"])["Body"]
        result = []
        for item in json.loads(body.read()):
            item_context = {**context, "Map": {"Item": {"Value": item}}}
            item_input = self.resolve(state["ItemSelector"], data, item_context)
            try:
                outcome = self.run(state["ItemProcessor"], item_input, item_context)
            except Exception as error:
                raise MapFailed(f"item {item}: {type(error).__name__}") from error
            if outcome["status"] != "Succeed":
                raise MapFailed(f"item {item} ended in {outcome['state']}")
            result.append(outcome["output"])
        return result


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


def sample(tmp_path: Path) -> Path:
    """A few hundred generated rows (bad rows of eight kinds), and the first three readings
    repeated at the end, the fourth with another heart rate: repeats across chunks, one of
    them conflicting."""
    path = generate_csv(SyntheticSpec(rows=400, users=6, seed=17), tmp_path / "big upload.csv")
    lines = path.read_bytes().splitlines(keepends=True)
    time, user, _, rest = lines[4].split(b",", 3)
    conflicting = b",".join([time, user, b"61", rest])
    path.write_bytes(b"".join(lines) + b"".join(lines[1:4]) + conflicting)
    return path


def single_path(path: Path, job: dict[str, Any], tmp_path: Path) -> SplitPaths:
    """The single-file path on `path`, at the job's instant and with its rules."""
    out = SplitPaths(tmp_path / "s.csv", tmp_path / "s.parquet", tmp_path / "s_rejected.csv")
    validate_file(
        path,
        read_header(path),
        load_profile(job["rules_profile"]),
        out,
        now_iso=job["now_iso"],
        limits=EngineLimits(memory_limit_mb=256, threads=1, temp_dir=tmp_path / "tmp"),
    )
    return out


def rows_of(path: Path) -> list[tuple[Any, ...]]:
    import duckdb

    return duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()


def execution_records(s3: Any, bucket: str) -> list[str]:
    """Every stored version and delete marker under work/executions/ (Plan's records)."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix="work/executions/")
    return [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]


@pytest.mark.parametrize("gzipped", [False, True], ids=["csv", "csv.gz"])
def test_the_state_machine_s_order_gives_the_single_path_s_outputs(
    steps: moto_env.Stack, aws: dict[str, Any], tmp_path: Path, gzipped: bool
) -> None:
    # GIVEN a file in raw/ (as uploaded, or gzip-compressed: EventBridge routes a .gz upload
    # here by its compressed size) and the definition as Terraform renders it (8 KB chunks)
    source = sample(tmp_path)
    key = "raw/big upload.csv"
    if gzipped:
        plain = source.read_bytes()
        source = source.with_name(source.name + ".gz")
        source.write_bytes(gzip.compress(plain, compresslevel=6))
        key += ".gz"
    s3 = aws["s3"]
    version = s3.put_object(Bucket=steps.bucket, Key=key, Body=source.read_bytes())["VersionId"]
    asl = _asl()
    definition = asl.render(
        asl.STATEMACHINE / "chunked_ingest.asl.json.tftpl",
        {"chunk_bytes": str(CHUNK_BYTES), "buckets": "3"},
    )
    event = object_created(steps.bucket, key, version, source.stat().st_size).to_dict()

    def body(k: str) -> bytes:
        return bytes(s3.get_object(Bucket=steps.bucket, Key=k)["Body"].read())

    # WHEN the states run in the definition's order
    walker = Walker(s3)
    outcome = walker.run(definition, event, {"Execution": {"Id": EXECUTION}})
    # THEN it ended in Assemble, through every state, the map steps once per chunk
    assert outcome["status"] == "Succeed" and outcome["state"] == "Assemble", outcome
    job = walker.outputs["Plan"]["job"]
    assert job["outcome"] == "planned" and job["chunks"] >= 3
    # (a gzip upload is planned over its decompressed data: Plan's plain copy in work/)
    assert job["data_key"] == (f"{job['work_prefix']}data.csv" if gzipped else key)
    assert walker.ran.count("StageChunk") == walker.ran.count("SplitChunk") == job["chunks"]
    assert walker.ran.count("FindBucketRepeats") == job["buckets"] == 3
    items = ("StageChunk", "FindBucketRepeats", "SplitChunk")
    assert [s for s in walker.ran if s not in items] == [
        "Plan",
        "Planned?",
        "StageChunks",
        "FindRepeats",
        "CountRows",
        "SplitChunks",
        "Assemble",
    ]
    # AND the outputs are the single-file path's on the same file at the same instant
    manifest = json.loads(body(outcome["output"]["manifest_key"]))
    outputs = manifest["outputs"]
    single = single_path(source, job, tmp_path)
    assert body(outputs["processed_csv"]) == single.processed_csv.read_bytes()
    assert body(outputs["rejected_csv"]) == single.rejected_csv.read_bytes()
    chunked_parquet = tmp_path / "chunked.parquet"
    chunked_parquet.write_bytes(body(outputs["processed_parquet"]))
    assert rows_of(chunked_parquet) == rows_of(single.processed_parquet)
    assert manifest["status"] == "processed" and manifest["source"]["key"] == key
    assert manifest["counts"]["input"] == 404 and manifest["dataset_id"] == job["dataset_id"]
    reasons = manifest["counts"]["by_reason"]
    assert (
        reasons.get("duplicate_reading", 0) >= 3 and reasons.get("conflicting_reading", 0) >= 1
    ), reasons
    assert job["work_prefix"] == f"{c.WORK_PREFIX}{job['dataset_id']}/"
    # AND the claim on the content is completed, and Data Processing Complete was published
    ledger = aws["dynamodb"].get_item(
        TableName=steps.ledger_table,
        Key={"pk": {"S": f"ingest:{job['sha256']}"}},
        ConsistentRead=True,
    )["Item"]
    assert ledger["status"]["S"] == "completed"
    events = moto_env.receive(aws["sqs"], steps.queues["analyzer"])
    assert [e["detail-type"] for e in events] == [c.PROCESSING_COMPLETE]
    assert events[0]["detail"]["rows"]["input"] == 404
    # AND what Plan recorded for the execution is gone, every version of it
    assert execution_records(s3, steps.bucket) == []
    # WHEN the same upload runs again THEN Plan skips it (its claim is completed), and
    # that execution's record is gone too
    again = Walker(s3).run(definition, event, {"Execution": {"Id": EXECUTION + "-2"}})
    assert again["state"] == "AlreadyIngested"
    assert execution_records(s3, steps.bucket) == []


def test_plan_rejects_an_unusable_file_with_its_manifest_and_event(
    steps: moto_env.Stack, aws: dict[str, Any]
) -> None:
    # GIVEN an upload that is not a vitals CSV
    key = "raw/notes.csv"
    version = aws["s3"].put_object(Bucket=steps.bucket, Key=key, Body=b"just,some\nnotes\n")
    event = object_created(steps.bucket, key, version["VersionId"], 16).to_dict()
    # WHEN Plan runs on it
    job = chunk_plan.handler({"event": event, "execution": EXECUTION, "chunk_bytes": 4096})
    # THEN the state machine is told it was rejected, with a rejected manifest and the event
    assert job["outcome"] == "rejected"
    manifest = json.loads(
        aws["s3"]
        .get_object(Bucket=steps.bucket, Key=f"manifests/{job['dataset_id']}.json")["Body"]
        .read()
    )
    assert manifest["status"] == "rejected" and manifest["error"]["code"]
    failed = moto_env.receive(aws["sqs"], steps.queues["alerts"])
    assert [e["detail-type"] for e in failed] == [c.PROCESSING_FAILED]
    assert failed[0]["detail"]["status"] == "rejected"
    # AND the execution ends there (InputRejected): what Plan recorded for it is gone
    assert execution_records(aws["s3"], steps.bucket) == []


def test_a_step_s_permanent_failure_reaches_the_state_machine_by_name(
    steps: moto_env.Stack,
) -> None:
    # GIVEN a chunk whose data object does not exist
    job = {
        "outcome": "planned",
        "bucket": steps.bucket,
        "source_key": "raw/gone.csv",
        "correlation_id": "b/raw/gone.csv@v1",
        "dataset_id": "0123456789abcdef",
        "rules_profile": "default",
        "work_prefix": "work/0123456789abcdef/",
        "data_key": "raw/gone.csv",
        "header_bytes": 10,
        "chunks": 1,
    }
    chunk = {"index": 0, "start": 10, "end": 100, "lines_before": 0}
    # WHEN the map step runs THEN it fails as PermanentError (the Retry that never retries)
    with pytest.raises(PermanentError) as failure:
        chunk_map.handler({"job": job, "chunk": chunk})
    assert type(failure.value).__name__ == "PermanentError"


def test_blank_lines_then_a_malformed_record_and_a_repeat_assemble_as_the_single_path(
    steps: moto_env.Stack, aws: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN blank lines, then a malformed record and a repeat, which the single path numbered
    # out of chunk order before blank lines were no records (the chunked engine's pinned
    # example), in 300-byte chunks
    header = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note\n"
    rows = [f"2025-11-01T00:0{m}:00Z,u1,70,98,5,36.6,120,80,\n" for m in range(6)]
    text = header + "\n" * 5 + "".join(rows) + "2025-11-01T00:00:00Z,u1,70\n" + rows[0]
    source = tmp_path / "out of order.csv"
    source.write_text(text)
    key = "raw/out of order.csv"
    s3 = aws["s3"]
    version = s3.put_object(Bucket=steps.bucket, Key=key, Body=source.read_bytes())["VersionId"]
    asl = _asl()
    definition = asl.render(
        asl.STATEMACHINE / "chunked_ingest.asl.json.tftpl", {"chunk_bytes": "300", "buckets": "2"}
    )
    event = object_created(steps.bucket, key, version, source.stat().st_size).to_dict()
    # WHEN the states run in the definition's order
    walker = Walker(s3)
    outcome = walker.run(definition, event, {"Execution": {"Id": EXECUTION}})
    # THEN the rejected CSV is the single path's, byte for byte
    assert outcome["state"] == "Assemble", outcome
    job = walker.outputs["Plan"]["job"]
    assert job["chunks"] >= 2
    manifest = json.loads(
        s3.get_object(Bucket=steps.bucket, Key=outcome["output"]["manifest_key"])["Body"].read()
    )
    single = single_path(source, job, tmp_path)
    for output, expected in (
        ("rejected_csv", single.rejected_csv),
        ("processed_csv", single.processed_csv),
    ):
        got = s3.get_object(Bucket=steps.bucket, Key=manifest["outputs"][output])["Body"].read()
        assert got == expected.read_bytes(), output


def test_plan_retried_by_its_execution_keeps_the_claim_another_execution_skips(
    steps: moto_env.Stack, aws: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN a small upload
    source = generate_csv(SyntheticSpec(rows=20, users=2, seed=3), tmp_path / "small.csv")
    key = "raw/small.csv"
    put = aws["s3"].put_object(Bucket=steps.bucket, Key=key, Body=source.read_bytes())
    event = object_created(steps.bucket, key, put["VersionId"], source.stat().st_size).to_dict()

    def plan(execution: str) -> str:
        request = {"event": event, "execution": execution, "chunk_bytes": 4096}
        return str(chunk_plan.handler(request)["outcome"])

    # WHEN Plan runs, runs again in the same execution (a retry), then in another execution
    # THEN the retry keeps planning under its claim; the other execution skips the file
    assert plan(EXECUTION) == "planned"
    assert plan(EXECUTION) == "planned"
    assert plan(EXECUTION + "-other") == "skipped"


def test_a_file_with_irregular_quotes_is_split_in_one_chunk_as_by_the_single_path(
    steps: moto_env.Stack, aws: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN text after a closing quote (the reader's records may not end at the plan's cuts)
    header = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note\n"
    rows = [f"2025-11-01T00:{m:02d}:00Z,u1,70,98,5,36.6,120,80,\n" for m in range(40)]
    rows[20] = '2025-11-01T00:20:00Z,u1,70,98,5,36.6,120,80,"a" "b"\n'
    source = tmp_path / "quotes.csv"
    source.write_text(header + "".join(rows))
    key = "raw/quotes.csv"
    s3 = aws["s3"]
    version = s3.put_object(Bucket=steps.bucket, Key=key, Body=source.read_bytes())["VersionId"]
    asl = _asl()
    definition = asl.render(
        asl.STATEMACHINE / "chunked_ingest.asl.json.tftpl", {"chunk_bytes": "512", "buckets": "2"}
    )
    event = object_created(steps.bucket, key, version, source.stat().st_size).to_dict()
    # WHEN the states run in the definition's order (the file spans several 512-byte marks)
    walker = Walker(s3)
    outcome = walker.run(definition, event, {"Execution": {"Id": EXECUTION}})
    # THEN Plan gives one chunk, and the outputs are the single path's
    assert outcome["state"] == "Assemble", outcome
    job = walker.outputs["Plan"]["job"]
    assert job["chunks"] == 1 and source.stat().st_size > 3 * 512
    manifest = json.loads(
        s3.get_object(Bucket=steps.bucket, Key=outcome["output"]["manifest_key"])["Body"].read()
    )
    single = single_path(source, job, tmp_path)
    got = s3.get_object(Bucket=steps.bucket, Key=manifest["outputs"]["processed_csv"])[
        "Body"
    ].read()
    assert got == single.processed_csv.read_bytes()


def stream_sample(tmp_path: Path) -> bytes:
    """About 2.3 MiB of records, a quoted note with a line break every 50 rows, and one
    whose line break sits on each 1 MiB boundary (where the S3 body's pieces end)."""
    from healthpipe.ports import HASH_CHUNK

    header = b"event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note\n"
    out = bytearray(header)
    m = 0
    for boundary in (HASH_CHUNK, 2 * HASH_CHUNK):
        while len(out) < boundary - 200:
            note = b'"first line\nsecond, ""quoted"""' if m % 50 == 0 else b""
            out += b"2025-11-01T%02d:%02d:00Z,u%d,70,98,5,36.6,120,80,%s\n" % (
                m // 60 % 24,
                m % 60,
                m % 4,
                note,
            )
            m += 1
        row = b"2025-11-02T00:00:00Z,u1,70,98,5,36.6,120,80,"
        pad = boundary - len(out) - len(row) - 2  # the quote, then the line break at boundary
        out += row + b'"' + b"x" * pad + b'\nend"\n'
    for _ in range(300):
        out += b"2025-11-03T00:%02d:00Z,u2,71,97,6,36.7,121,81,\n" % (m % 60)
        m += 1
    return bytes(out)


def test_plan_streams_the_upload_and_cuts_as_the_local_plan(
    steps: moto_env.Stack,
    aws: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gzip

    from healthpipe.adapters.aws.s3 import S3ObjectStore
    from healthpipe.dataops.chunked.plan import plan_file

    def no_download(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Plan downloaded the upload")

    monkeypatch.setattr(S3ObjectStore, "_download", no_download)
    s3 = aws["s3"]
    plain = stream_sample(tmp_path)
    lines = plain.split(b"\n")
    mixed = b"\n".join(line + b"\r" if i % 3 == 0 else line for i, line in enumerate(lines))
    cases = {
        "raw/plain.csv": plain,  # one pass, no copy
        "raw/mixed.csv.gz": gzip.compress(mixed),  # gzip with CRLF and LF: the LF copy
    }
    for number, (key, body) in enumerate(cases.items()):
        # GIVEN an upload larger than the stream's pieces, line breaks in quotes across them
        version = s3.put_object(Bucket=steps.bucket, Key=key, Body=body)["VersionId"]
        event = object_created(steps.bucket, key, version, len(body)).to_dict()
        # WHEN Plan reads it from S3 (no download: the store's download fails)
        request = {"event": event, "execution": f"{EXECUTION}-{number}", "chunk_bytes": 65536}
        job = chunk_plan.handler(request)
        # THEN its plan is the local plan of the same bytes, cut for cut
        local = tmp_path / key.rsplit("/", 1)[-1]
        local.write_bytes(body)
        (tmp_path / f"w{number}").mkdir()
        expected = plan_file(local, tmp_path / f"w{number}", chunk_bytes=65536, sha256="")
        got = json.loads(s3.get_object(Bucket=steps.bucket, Key=job["plan_key"])["Body"].read())
        assert job["outcome"] == "planned" and job["chunks"] > 20, key
        assert got == {**expected.plan.as_json(), "sha256": job["sha256"]}
        # AND the chunks' ranges are over the same bytes (the copy for a prepared file)
        data = s3.get_object(Bucket=steps.bucket, Key=job["data_key"])["Body"].read()
        assert data == expected.data.read_bytes(), key
        assert (job["data_key"] == key) == (key == "raw/plain.csv")
    # AND a gzip upload cut short is rejected after the whole of it was hashed
    import hashlib

    from healthpipe.domain.identity import dataset_id_for

    cut = gzip.compress(plain)[:-5000]
    version = s3.put_object(Bucket=steps.bucket, Key="raw/cut.csv.gz", Body=cut)["VersionId"]
    event = object_created(steps.bucket, "raw/cut.csv.gz", version, len(cut)).to_dict()
    job = chunk_plan.handler({"event": event, "execution": EXECUTION, "chunk_bytes": 65536})
    assert job["outcome"] == "rejected"
    assert job["dataset_id"] == dataset_id_for(hashlib.sha256(cut).hexdigest())
    manifest = s3.get_object(Bucket=steps.bucket, Key=f"manifests/{job['dataset_id']}.json")
    assert json.loads(manifest["Body"].read())["error"]["code"] == "corrupt_gzip"


def test_the_s3_store_writes_and_reads_streams_in_bounded_parts(
    stack: moto_env.Stack, aws: dict[str, Any]
) -> None:
    import hashlib

    from boto3.s3.transfer import TransferConfig

    from healthpipe.adapters.aws.s3 import MIN_PART, S3ObjectStore

    s3 = aws["s3"]
    store = S3ObjectStore(
        stack.bucket, s3, transfer_config=TransferConfig(multipart_chunksize=MIN_PART)
    )
    block = bytes(range(256)) * 4096  # 1 MiB
    # GIVEN 11 MiB handed in 1 MiB blocks (three 5 MiB parts at most, the last smaller)
    version = store.put_stream("work/x/data.csv", (block for _ in range(11)), "text/csv")
    # THEN the object is those bytes, and reading it back as a stream hashes them
    stream = store.stream("work/x/data.csv", version)
    assert b"".join(stream) == block * 11
    assert stream.sha256 == hashlib.sha256(block * 11).hexdigest()
    assert (stream.size, stream.version_id) == (11 * len(block), version)

    # AND a stream that fails half-way leaves no object and no open upload
    def failing() -> Any:
        yield from (block for _ in range(7))
        raise OSError("source went away")

    with pytest.raises(OSError):
        store.put_stream("work/x/broken.csv", failing(), "text/csv")
    assert "Contents" not in s3.list_objects_v2(Bucket=stack.bucket, Prefix="work/x/broken")
    assert not s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads")


def test_plan_s_record_of_its_claim_is_named_by_the_execution() -> None:
    from healthpipe.stages.chunked import EXECUTIONS_PREFIX, execution_key

    # the execution's name (unique to the state machine), key-safe whatever it holds
    assert execution_key(EXECUTION) == f"{EXECUTIONS_PREFIX}t1.json"
    assert execution_key("arn:x:execution:sm:a b/../c") == f"{EXECUTIONS_PREFIX}a_b_.._c.json"
    assert execution_key("arn:x:execution:sm:") == f"{EXECUTIONS_PREFIX}execution.json"
