"""Code <-> infra: every event the code emits is routed by the Terraform EventBridge rules to
the function that handles it, and to no other.

Patterns are evaluated with EventBridge semantics by moto's matcher
(`moto.events.models.EventPattern`). The events come from the real stages run on the local
runtime (a good file and an unusable one), from the event constructors, and from the
Terraform digest schedule itself. Each matched rule's target must be a function whose
handler accepts the event (its `parse` yields work for that route), and every other function
must refuse it.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from infra_terraform import Module, attr, each_value, load_module, squash
from moto.events.models import EventPattern

from healthpipe import constants as c
from healthpipe import routing
from healthpipe.bootstrap import build_local
from healthpipe.config import Settings, load_settings
from healthpipe.domain.documents.events import EventDetail
from healthpipe.events import Event, object_created
from healthpipe.lambdas import FUNCTIONS
from healthpipe.lambdas.runtime import UnroutableEventError
from healthpipe.stages.analyze import analyze
from healthpipe.stages.digest import window_for
from healthpipe.stages.ingest import ingest
from healthpipe.stages.notify import notify
from healthpipe.synthetic import SyntheticSpec, generate_csv

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("infra_events")

BUCKET = "healthpipe-data-123456789012-us-east-1"
DEFAULT, CUSTOM = "default", "custom"
CHUNKED = "chunked"  # the large-upload rule (stepfunctions.tf) -> the state machine
GROUPED = "grouped_analyze"  # the large-file rule (grouped_analyze.tf) -> its state machine


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def threshold_bytes(module: Module) -> int:
    return int(attr(module.variables["chunked_threshold_mb"], "default")) * 1048576


def grouped_threshold(module: Module) -> int:
    return int(attr(module.variables["grouped_analyze_threshold_rows"], "default"))


def gzip_threshold_bytes(module: Module) -> int:
    ratio = attr(module.variables["chunked_gzip_ratio"], "default")
    return math.floor(threshold_bytes(module) / ratio)


def case_spellings(suffix: str) -> list[str]:
    """Every spelling of `suffix` in upper and lower case, in Terraform's `setproduct` order."""
    return ["".join(p) for p in itertools.product(*[(ch.lower(), ch.upper()) for ch in suffix])]


def upload_patterns(
    module: Module,
    bucket: str = BUCKET,
    threshold_mb: int | None = None,
    gzip_ratio: float | None = None,
) -> dict[str, dict[str, Any]]:
    """route => the raw-upload pattern Terraform deploys: for the ingestor
    (`local.ingest_pattern`) the ingest route's pattern with this deployment's bucket and no
    size (every raw upload); for the state machine ("chunked", `local.large_upload_pattern`)
    the same with, for its plain keys and its gzip keys (`local.upload_keys`: `raw/*.csv` and
    `raw/*.gz` in every case), the size at or above the threshold (`local.upload_thresholds`).
    The expressions are checked, then evaluated here, for `bucket` and the variables'
    defaults or the values given."""
    keys = squash(module.local("upload_keys"))
    spelled = (
        "'${{[forpinsetproduct({}):{{\\'wildcard\\':\\'${{\"raw/*.${{join(\"\",p)}}\"}}\\'}}]}}'"
    )
    plain = spelled.format("[\\'c\\',\\'C\\'],[\\'s\\',\\'S\\'],[\\'v\\',\\'V\\']")
    gz = spelled.format("[\\'g\\',\\'G\\'],[\\'z\\',\\'Z\\']")
    assert keys == f"{{'plain':{plain},'gzip':{gz}}}", keys
    thresholds = squash(module.local("upload_thresholds"))
    assert thresholds == (
        "{'plain':'${local.chunked_threshold_bytes}','gzip':'${local.chunked_gzip_threshold_bytes}'}"
    ), thresholds
    assert squash(module.local("chunked_threshold_bytes")) == "${var.chunked_threshold_mb*1048576}"
    assert squash(module.local("chunked_gzip_threshold_bytes")) == (
        "${floor(local.chunked_threshold_bytes/var.chunked_gzip_ratio)}"
    )
    with_bucket = "{'bucket':{'name':['${local.names.data_bucket}']}"
    ingest = squash(module.local("ingest_pattern")).replace("\\", "").replace('"', "'")
    assert ingest == (
        "${merge(local.routes.ingest.pattern,{'detail':'${merge(local.routes.ingest.pattern.detail,"
        f"{with_bucket}}})}}'}})}}"
    ), ingest
    large = squash(module.local("large_upload_pattern")).replace("\\", "").replace('"', "'")
    assert large.startswith(
        "${merge(local.routes.ingest.pattern,{'detail':'${merge(local.routes.ingest.pattern.detail,"
        f"{with_bucket},"
    ), large
    branches = (
        "'object':{'$or':'${[forkindin['plain','gzip']:{'key':'${local.upload_keys[kind]}',"
        "'size':[{'numeric':['>=','${local.upload_thresholds[kind]}']}]}]}'}"
    )
    assert branches in large, large
    assert squash(module.local("chunked_pattern")) == "${local.large_upload_pattern}"
    # evaluated as Terraform does
    route = module.local("routes")[routing.INGEST]["pattern"]
    kinds = {
        "plain": [{"wildcard": f"raw/*.{s}"} for s in case_spellings("csv")],
        "gzip": [{"wildcard": f"raw/*.{s}"} for s in case_spellings("gz")],
    }
    limits = {"plain": threshold_bytes(module), "gzip": gzip_threshold_bytes(module)}
    if threshold_mb is not None or gzip_ratio is not None:
        default_ratio = attr(module.variables["chunked_gzip_ratio"], "default")
        plain_limit = (threshold_mb or 0) * 1048576 or limits["plain"]
        gzip_limit = math.floor(plain_limit / (gzip_ratio or default_ratio))
        limits = {"plain": plain_limit, "gzip": gzip_limit}
    ingest_pattern = json.loads(json.dumps(route))
    ingest_pattern["detail"]["bucket"] = {"name": [bucket]}
    chunked = json.loads(json.dumps(ingest_pattern))
    chunked["detail"]["object"] = {
        "$or": [
            {"key": kinds[kind], "size": [{"numeric": [">=", limits[kind]]}]}
            for kind in ("plain", "gzip")
        ]
    }
    return {routing.INGEST: ingest_pattern, CHUNKED: chunked}


def deployed_patterns(module: Module) -> dict[str, tuple[str, dict[str, Any]]]:
    """route target -> (bus, pattern) as Terraform deploys them: the ingest rule and the
    large-upload rule of the state machine ("chunked") from `upload_patterns`, the analyze
    rule for processed files below the grouped-analysis threshold (or without row counts:
    `local.analyze_pattern`) and the large-file rule of the grouped analysis
    (`local.grouped_analyze_pattern`, "grouped_analyze")."""
    routes = module.local("routes")
    uploads = upload_patterns(module)
    rows = "'numeric':['{}','${{var.grouped_analyze_threshold_rows}}']"
    for name, valid in (
        ("analyze_pattern", f"[{{{rows.format('<')}}},{{'exists':False}}]"),
        ("grouped_analyze_pattern", f"[{{{rows.format('>=')}}}]"),
    ):
        expression = squash(module.local(name)).replace("\\", "")
        assert expression.startswith("${merge(local.routes.analyze.pattern,"), name
        assert "merge(local.routes.analyze.pattern.detail,{'rows':{'valid':" in expression, name
        assert f"'valid':{valid}}}" in expression, (name, expression)
    patterns = squash(module.local("route_patterns"))
    assert "'analyze':'${jsonencode(local.analyze_pattern)}'" in patterns
    threshold = grouped_threshold(module)
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for target, route in routes.items():
        pattern = json.loads(json.dumps(route["pattern"]))
        if route["bus"] == DEFAULT:
            assert target == routing.INGEST
            pattern = uploads[routing.INGEST]
            out[CHUNKED] = (DEFAULT, uploads[CHUNKED])
        if target == routing.ANALYZE:
            large = json.loads(json.dumps(pattern))
            below = [{"numeric": ["<", threshold]}, {"exists": False}]
            pattern["detail"]["rows"] = {"valid": below}
            large["detail"]["rows"] = {"valid": [{"numeric": [">=", threshold]}]}
            out[GROUPED] = (route["bus"], large)
        out[target] = (route["bus"], pattern)
    return out


class RulerPattern(EventPattern):
    """moto's matcher with EventBridge's numeric range: its engine (Event Ruler) compares
    numbers between -5.0e9 and +5.0e9 only ("Numeric matching is limited to value between
    -5.0e9 and +5.0e9 inclusive"; `ComparableNumber.generate` refuses others, and the event's
    value is then matched as text), so a larger value matches no numeric pattern. moto
    compares any number."""

    @staticmethod
    def _does_item_match_named_filter(item: Any, pattern: dict[str, Any]) -> bool:
        comparable = isinstance(item, int | float) and abs(item) <= routing.NUMERIC_LIMIT
        if "numeric" in pattern and not comparable:
            return False
        return EventPattern._does_item_match_named_filter(item, pattern)


def matching_routes(module: Module, event: dict[str, Any], bus: str) -> set[str]:
    return {
        target
        for target, (rule_bus, pattern) in deployed_patterns(module).items()
        if rule_bus == bus and RulerPattern.load(json.dumps(pattern)).matches_event(event)
    }


def taking_routes(module: Module, event: dict[str, Any], bus: str) -> set[str]:
    """The routes that take `event`: each matching rule whose target takes it (a state
    machine takes what its rule matches; a function, what its `parse` yields work for: the
    ingestor leaves the uploads of the chunked rule to it)."""
    routes = module.local("routes")
    return {
        target
        for target in matching_routes(module, event, bus)
        if target not in routes
        or target in accepted_targets(routes[target]["target"], event)
        or routes[target]["target"] not in FUNCTIONS
    }


@pytest.fixture(autouse=True)
def terraform_thresholds(module: Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingestor's settings as Terraform gives them (lambda.tf `setting_values`)."""
    values = module.local("setting_values")
    assert values["chunked_threshold_mb"] == "${tostring(var.chunked_threshold_mb)}"
    assert values["chunked_gzip_ratio"] == "${tostring(var.chunked_gzip_ratio)}"
    for name in ("chunked_threshold_mb", "chunked_gzip_ratio"):
        default = attr(module.variables[name], "default")
        monkeypatch.setenv(f"HEALTHPIPE_{name.upper()}", str(default))


def envelope(event: Event, bus: str) -> dict[str, Any]:
    body = event.to_dict()
    body.update(
        version="0",
        account="123456789012",
        region="us-east-1",
        resources=[f"arn:aws:s3:::{BUCKET}"] if bus == DEFAULT else [],
    )
    return json.loads(json.dumps(body))


def accepted_targets(function: str, raw: dict[str, Any]) -> set[str]:
    parse = getattr(importlib.import_module(f"healthpipe.lambdas.{function}"), "parse", None)
    if parse is None:  # a state of the chunked-ingest state machine: no EventBridge event
        return set()
    try:
        return {work.target for work in parse(raw)}
    except UnroutableEventError:
        return set()


# --- the rules are the code's routes ------------------------------------------------------
def test_terraform_patterns_equal_the_code_routes(module: Module) -> None:
    routes = module.local("routes")
    assert set(routes) == {route.target for route in routing.ROUTES}
    for route in routing.ROUTES:
        assert routes[route.target]["name"] == route.name
        assert routes[route.target]["pattern"] == route.pattern


def test_s3_events_are_routed_on_the_default_bus_and_pipeline_events_on_the_custom_bus(
    module: Module,
) -> None:
    routes = module.local("routes")
    assert routes["ingest"]["bus"] == DEFAULT
    assert {r["bus"] for t, r in routes.items() if t != "ingest"} == {CUSTOM}
    assert squash(module.local("bus_name_of_rule")) == squash(
        '${{for route, r in local.routes : route => r.bus == "default" ? "default" '
        ": aws_cloudwatch_event_bus.this.name}}"
    )
    rule = module.resource("aws_cloudwatch_event_rule", "this")
    assert attr(rule, "event_bus_name") == "${local.bus_name_of_rule[each.key]}"
    assert attr(rule, "event_pattern") == "${local.route_patterns[each.key]}"
    # and the code publishes its events to the bus named by event_bus_name = the custom bus
    assert (
        module.local("setting_values")["event_bus_name"] == "${aws_cloudwatch_event_bus.this.name}"
    )


def test_each_route_targets_the_function_that_serves_it(module: Module) -> None:
    routes = module.local("routes")
    for target, route in routes.items():
        if target == routing.ALERT:
            assert route["target"] == "alerts"
            continue
        assert route["target"] in FUNCTIONS
    target = module.resource("aws_cloudwatch_event_target", "this")
    arn = attr(target, "arn")
    assert "aws_lambda_function.this[each.value.target].arn" in arn
    assert "aws_sns_topic.alerts.arn" in arn
    assert attr(attr(target, "dead_letter_config"), "arn") == (
        "${aws_sqs_queue.dlq[local.route_dlq[each.key]].arn}"
    )
    retry = attr(target, "retry_policy")
    assert attr(retry, "maximum_retry_attempts") == "${var.event_retry.maximum_retry_attempts}"


KEY_SAMPLES = (
    "raw/a.csv",
    "raw/b/c.csv.gz",
    "raw/A.CSV",
    "raw/export.Csv",
    "raw/vitals.csv.GZ",
    "raw/x.txt",
    "raw/x.csv.bak",
    "rawish/a.csv",
    "processed/a.csv",
    "processed/A.PNG",
)


def test_moto_and_the_code_agree_on_the_route_patterns() -> None:
    samples = [object_created(BUCKET, key, "v1", 10).to_dict() for key in KEY_SAMPLES]
    for route in routing.ROUTES:
        matcher = EventPattern.load(json.dumps(route.pattern))
        for sample in samples:
            assert matcher.matches_event(sample) == routing.matches(route.pattern, sample)


def test_moto_and_the_code_agree_on_the_key_operators() -> None:
    """`routing.matches` (the local twin's matcher) reads the key operators as moto does:
    prefix, suffix and equality ignoring case too, and wildcards."""
    operators: list[dict[str, Any]] = [
        {"prefix": "raw/"},
        {"prefix": {"equals-ignore-case": "RAW/"}},
        {"suffix": ".csv"},
        {"suffix": {"equals-ignore-case": ".CSV.gz"}},
        {"suffix": {"equals-ignore-case": ".png"}},
        {"equals-ignore-case": "RAW/A.csv"},
        {"wildcard": "raw/*.Csv"},
    ]
    samples = [object_created(BUCKET, key, "v1", 10).to_dict() for key in KEY_SAMPLES]
    for operator in operators:
        pattern = {"detail": {"object": {"key": [operator]}}}
        matcher = EventPattern.load(json.dumps(pattern))
        for sample in samples:
            assert matcher.matches_event(sample) == routing.matches(pattern, sample), (
                operator,
                sample["detail"]["object"]["key"],
            )


# --- events the code emits ------------------------------------------------------------------
@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Event]]:
    """Every event the real stages emit on the local runtime for one good and one unusable file."""
    workspace = tmp_path_factory.mktemp("ws")
    runtime = build_local(load_settings({"workspace": workspace, "retry_base_seconds": 0.0}))
    try:
        good = generate_csv(SyntheticSpec(rows=300, users=5, seed=7), workspace / "good.csv")
        bad = workspace / "bad.csv"
        bad.write_text("this is not, a vitals\nfile,at all\n")
        events: list[Event] = []
        queue: list[Event] = []
        for key, path in (("raw/good.csv", good), ("raw/bad.csv", bad)):
            runtime.store.put_file(key, Path(path), "text/csv")
            queue.append(object_created(runtime.store.bucket, key, None, None))
        stages = {routing.INGEST: ingest, routing.ANALYZE: analyze, routing.NOTIFY: notify}
        while queue:
            event = queue.pop(0)
            for route in routing.routes_for(event.to_dict()):
                if route.target in stages:
                    result = stages[route.target](event, runtime.ports)
                    events.extend(result.events)
                    queue.extend(result.events)
        yield events
    finally:
        runtime.close()


def test_the_stages_emitted_the_whole_vocabulary(emitted: list[Event]) -> None:
    kinds = {(e.source, e.detail_type, e.detail.get("status")) for e in emitted}
    assert (c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, "success") in kinds
    assert (c.SOURCE_ANALYZER, c.ANALYSIS_COMPLETE, "success") in kinds
    assert any(
        source == c.SOURCE_INGESTOR and kind == c.PROCESSING_FAILED for source, kind, _ in kinds
    )


def constructed_events() -> list[tuple[str, Event, set[str]]]:
    """(bus, event, routes it must reach) for events built with the code's constructors."""

    def detail(status: str) -> dict[str, Any]:
        return EventDetail(
            correlation_id="b/k@v", dataset_id="0123456789abcdef", status=status
        ).as_json()

    s3 = [
        ("raw/x.csv", {routing.INGEST}),
        ("raw/x.csv.gz", {routing.INGEST}),
        ("raw/2026/11/X.CSV", {routing.INGEST}),
        ("processed/x.csv", set()),
        ("raw/2026/11/x.Csv", {routing.INGEST}),
        ("raw/x.csv.GZ", {routing.INGEST}),
        ("raw/x.txt", {routing.INGEST}),
        ("raw/x.csv.bak", {routing.INGEST}),
        ("manifests/x.json", set()),
    ]
    out: list[tuple[str, Event, set[str]]] = [
        (DEFAULT, object_created(BUCKET, key, "v1", 100), expected) for key, expected in s3
    ]
    out += [
        (
            CUSTOM,
            Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail("success")),
            {routing.ANALYZE},
        ),
        (CUSTOM, Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail("rejected")), set()),
        (
            CUSTOM,
            Event(c.SOURCE_INGESTOR, c.PROCESSING_FAILED, detail("rejected")),
            {routing.ALERT},
        ),
        (
            CUSTOM,
            Event(c.SOURCE_ANALYZER, c.ANALYSIS_COMPLETE, detail("success")),
            {routing.NOTIFY},
        ),
        (CUSTOM, Event(c.SOURCE_ANALYZER, c.ANALYSIS_FAILED, detail("failed")), {routing.ALERT}),
        (CUSTOM, Event(c.SOURCE_NOTIFIER, c.REPORT_SENT, detail("success")), set()),
        (
            CUSTOM,
            Event(c.SOURCE_SCHEDULER, c.DIGEST_REQUESTED, {"window_seconds": 86400}),
            {routing.DIGEST},
        ),
        # a pipeline event someone publishes to the default bus reaches nothing
        (DEFAULT, Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail("success")), set()),
    ]
    return out


def test_constructed_events_reach_exactly_their_routes(module: Module) -> None:
    for bus, event, expected in constructed_events():
        assert matching_routes(module, envelope(event, bus), bus) == expected, (bus, event)


# supported kinds in every case: routed by size; any other key under raw/: the ingestor's
SUPPORTED_KEYS = (
    "raw/x.csv",
    "raw/X.CSV",
    "raw/export.Csv",
    "raw/2026/11/y.cSv",
    "raw/y.csv.gz",
    "raw/Y.CSV.GZ",
    "raw/vitals.csv.GZ",
    "raw/v.Csv.Gz",
)
UNSUPPORTED_KEYS = (
    "raw/vitals.txt",
    "raw/x.csv.bak",
    "raw/x.csv.gz.part",
    "raw/x.CSVX",
    "raw/readme",
    "raw/2026/notes.xlsx",
)


def test_uploads_are_routed_by_size_to_the_ingestor_or_the_state_machine(module: Module) -> None:
    threshold, gzip_threshold = threshold_bytes(module), gzip_threshold_bytes(module)
    # the product's CSVs compress 4.2-5.2 times (gzip -6, DuckDB): the ratio keeps a margin
    assert attr(module.variables["chunked_gzip_ratio"], "default") >= 6
    limit = routing.NUMERIC_LIMIT  # EventBridge compares numbers up to 5.0e9
    sizes = sorted(
        {0, 1, gzip_threshold - 1, gzip_threshold, gzip_threshold + 1}
        | {threshold - 1, threshold, threshold + 1, 999_999_999}
        | {limit, limit + 1, 6_000_000_000, 5 * 10**12}  # S3 objects reach 5 TB
    )
    # exactly one route takes each upload of a supported kind, in any case, of any size: the
    # state machine from its threshold up to EventBridge's numeric range, else the ingestor
    for key in SUPPORTED_KEYS:
        kind_limit = gzip_threshold if key.lower().endswith(".gz") else threshold
        for size in sizes:
            event = envelope(object_created(BUCKET, key, "v1", size), DEFAULT)
            large = kind_limit <= size <= limit
            expected = {CHUNKED} if large else {routing.INGEST}
            assert taking_routes(module, event, DEFAULT) == expected, (key, size)
            # the ingestor's rule has no size: it sees every upload, and leaves the large
            # ones to the state machine's rule; beyond the range that rule matches nothing
            rules = {CHUNKED, routing.INGEST} if large else {routing.INGEST}
            assert matching_routes(module, event, DEFAULT) == rules, (key, size)
    # any other key under raw/, of any size, is the ingestor's alone (which rejects it)
    for key in UNSUPPORTED_KEYS:
        for size in sizes:
            event = envelope(object_created(BUCKET, key, "v1", size), DEFAULT)
            assert matching_routes(module, event, DEFAULT) == {routing.INGEST}, (key, size)
            assert taking_routes(module, event, DEFAULT) == {routing.INGEST}, (key, size)
    # a .gz that is not a .csv.gz is routed as a gzip (EventBridge cannot require both
    # suffixes in every case): the state machine's Plan rejects it when large
    for size, expected in ((gzip_threshold - 1, {routing.INGEST}), (gzip_threshold, {CHUNKED})):
        event = envelope(object_created(BUCKET, "raw/x.txt.gz", "v1", size), DEFAULT)
        assert taking_routes(module, event, DEFAULT) == expected, size
    # a gzip upload is judged by its compressed size: 300 MB of gzip (some 1.3-1.5 GB of
    # CSV) is the state machine's, the same size of plain CSV the ingestor's
    for key, expected in (("raw/big.csv.gz", {CHUNKED}), ("raw/big.csv", {routing.INGEST})):
        event = envelope(object_created(BUCKET, key, "v1", 300_000_000), DEFAULT)
        assert taking_routes(module, event, DEFAULT) == expected, key
    # not under raw/, or another bucket: neither
    for bucket, key in (
        (BUCKET, "processed/x.csv"),
        (BUCKET, "processed/csv/dt=2026-12-01/x-0123.csv"),
        (BUCKET, "rawish/x.csv"),
        (BUCKET, "manifests/x.json"),
        ("another-bucket", "raw/x.csv"),
        ("another-bucket", "raw/x.csv.gz"),
        ("another-bucket", "raw/x.txt"),
    ):
        for size in (1, gzip_threshold, threshold, 6_000_000_000):
            event = envelope(object_created(bucket, key, "v1", size), DEFAULT)
            assert matching_routes(module, event, DEFAULT) == set(), (bucket, key, size)
    # the thresholds stay within EventBridge's numeric range
    assert 0 < gzip_threshold < threshold <= 1_000_000_000 < limit


def test_processed_files_are_routed_by_rows_to_the_analyzer_or_the_grouped_analysis(
    module: Module,
) -> None:
    threshold = grouped_threshold(module)
    assert threshold == Settings.model_fields["analyze_group_rows"].default  # the local one

    def complete(rows: dict[str, int] | None) -> dict[str, Any]:
        detail = {"dataset_id": "d", "status": "success", "manifest_key": "manifests/d.json"}
        detail |= {"processed_key": "processed/d.parquet"}
        if rows is not None:
            detail["rows"] = rows
        return envelope(Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, detail), CUSTOM)

    for valid, expected in (
        (0, {routing.ANALYZE}),
        (threshold - 1, {routing.ANALYZE}),
        (threshold, {GROUPED}),
        (threshold + 1, {GROUPED}),
        (50_000_000, {GROUPED}),
    ):
        event = complete({"input": valid + 3, "valid": valid, "rejected": 3})
        assert matching_routes(module, event, CUSTOM) == expected, valid
    # an event without row counts still reaches the analyzer (every event: exactly one)
    assert matching_routes(module, complete(None), CUSTOM) == {routing.ANALYZE}
    # a failed ingest reaches neither
    failed = Event(c.SOURCE_INGESTOR, c.PROCESSING_COMPLETE, {"status": "rejected"})
    assert matching_routes(module, envelope(failed, CUSTOM), CUSTOM) == set()


def starts_its_state_machine(module: Module, machine: str) -> dict[str, Any]:
    """The rule of `machine` (state_machines.tf, one per entry of local.state_machines)
    starts that state machine with a role allowed that only, and dead-letters what it
    cannot deliver; the entry, for the caller's checks."""
    entry: dict[str, Any] = module.local("state_machines")[machine]
    rule = module.resource("aws_cloudwatch_event_rule", "state_machine")
    assert attr(rule, "for_each") == "${local.state_machines}"
    assert attr(rule, "event_bus_name") == "${each.value.bus}"
    assert attr(rule, "event_pattern") == "${each.value.pattern}"
    target = module.resource("aws_cloudwatch_event_target", "state_machine")
    assert attr(target, "event_bus_name") == "${each.value.bus}"
    assert attr(target, "arn") == "${aws_sfn_state_machine.this[each.key].arn}"
    assert attr(target, "role_arn") == "${aws_iam_role.state_machine_start[each.key].arn}"
    assert attr(attr(target, "dead_letter_config"), "arn") == (
        "${aws_sqs_queue.dlq[each.value.dlq].arn}"
    )
    arns = squash(module.local("dlq_rule_arns"))
    assert (
        "[formachine,ruleinaws_cloudwatch_event_rule.state_machine:rule.arn"
        "iflocal.state_machines[machine].dlq==queue]"
    ) in arns
    start = attr(module.data["aws_iam_policy_document"]["state_machine_start"], "statement")
    assert each_value(attr(start, "sid"), entry) == entry["start_sid"]
    assert attr(start, "actions") == ["states:StartExecution"]
    assert attr(start, "resources") == ["${aws_sfn_state_machine.this[each.key].arn}"]
    return entry


def test_the_large_file_rule_starts_the_grouped_analysis(module: Module) -> None:
    entry = starts_its_state_machine(module, "grouped_analyze")
    assert entry["bus"] == "${aws_cloudwatch_event_bus.this.name}"
    assert entry["pattern"] == "${jsonencode(local.grouped_analyze_pattern)}"
    assert entry["dlq"] == "analyze_prepare"  # the queue of Prepare, the state it starts
    assert entry["start_sid"] == "StartGroupedAnalyze"


def test_the_uploads_archive_keeps_uploads_of_every_size(module: Module) -> None:
    archive = module.resource("aws_cloudwatch_event_archive", "uploads")
    assert attr(archive, "event_pattern") == "${jsonencode(local.uploads_pattern)}"
    # the ingestor's pattern: this bucket's raw uploads, no size (upload_patterns checks it)
    assert squash(module.local("uploads_pattern")) == "${local.ingest_pattern}"
    pattern = upload_patterns(module)[routing.INGEST]
    for key in ("raw/x.csv", "raw/x.Csv", "raw/x.txt"):
        for size in (0, threshold_bytes(module), 6_000_000_000):
            event = envelope(object_created(BUCKET, key, "v1", size), DEFAULT)
            assert RulerPattern.load(json.dumps(pattern)).matches_event(event), (key, size)


def test_the_large_upload_rule_starts_the_state_machine(module: Module) -> None:
    entry = starts_its_state_machine(module, CHUNKED)
    assert entry["bus"] == DEFAULT  # S3's events reach the default bus only
    assert entry["pattern"] == "${jsonencode(local.chunked_pattern)}"
    assert entry["dlq"] == "chunk_plan"  # the queue of Plan, the state it starts
    assert entry["start_sid"] == "StartChunkedIngest"


def test_s3_events_of_another_bucket_do_not_reach_the_ingestor(module: Module) -> None:
    event = object_created("someone-elses-bucket", "raw/x.csv", "v1", 10)
    assert matching_routes(module, envelope(event, DEFAULT), DEFAULT) == set()


def test_emitted_events_reach_the_routes_the_code_expects(
    module: Module, emitted: list[Event]
) -> None:
    for event in emitted:
        expected = {route.target for route in routing.routes_for(event.to_dict())}
        assert matching_routes(module, envelope(event, CUSTOM), CUSTOM) == expected, (
            event.detail_type
        )


def test_the_digest_schedule_emits_what_the_digest_route_and_stage_expect(module: Module) -> None:
    schedule = module.resource("aws_scheduler_schedule", "digest")
    target = attr(schedule, "target")
    assert attr(target, "arn") == "${aws_cloudwatch_event_bus.this.arn}"
    assert attr(target, "input") == "${jsonencode(local.digest_detail)}"
    params = attr(target, "eventbridge_parameters")
    assert attr(params, "source") == c.SOURCE_SCHEDULER
    assert attr(params, "detail_type") == c.DIGEST_REQUESTED
    dead_letters = attr(attr(target, "dead_letter_config"), "arn")
    assert dead_letters == '${aws_sqs_queue.dlq["scheduler"].arn}'
    # GIVEN the event the schedule publishes
    event = Event(c.SOURCE_SCHEDULER, c.DIGEST_REQUESTED, dict(module.local("digest_detail")))
    raw = envelope(event, CUSTOM)
    # THEN only the digest rule routes it, the notifier takes it as a digest, and the digest
    # stage reads a one-day window from it
    assert matching_routes(module, raw, CUSTOM) == {routing.DIGEST}
    assert accepted_targets("notifier", raw) == {routing.DIGEST}
    window = window_for(Event.from_dict(raw))
    assert window.end - window.start == 86400


def _all_events(emitted: list[Event]) -> list[tuple[str, Event]]:
    return [(bus, event) for bus, event, _ in constructed_events()] + [(CUSTOM, e) for e in emitted]


def test_the_function_a_rule_targets_accepts_the_event_and_the_others_refuse_it(
    module: Module, emitted: list[Event]
) -> None:
    routes = module.local("routes")
    for bus, event in _all_events(emitted):
        if bus == DEFAULT and event.source != "aws.s3":
            continue  # never delivered: only S3 events are routed on the default bus
        raw = envelope(event, bus)
        reached = matching_routes(module, raw, bus)
        for function in FUNCTIONS:
            wanted = {t for t in reached if routes[t]["target"] == function}
            assert accepted_targets(function, raw) == wanted, (
                function,
                event.detail_type,
                event.detail,
            )
