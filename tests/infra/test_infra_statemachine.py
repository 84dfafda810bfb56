"""The Step Functions definition of the chunked ingest (infra/terraform/statemachine):
valid by a real ASL validator (npm `asl-validator`, installed from tools/asl's lockfile by
`make asl`), and shaped as issue 17 asks: a Distributed Map reading the plan's chunk list
from S3, bounded concurrency, per-item retries, a failure threshold, and a failure path
that publishes Data Processing Failed."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from infra_terraform import ROOT, Module, attr, each_value, load_module, squash

from healthpipe import constants as c
from healthpipe.lambdas import FUNCTIONS


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate_asl", ROOT / "scripts/validate_asl.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("validate_asl", module)
    spec.loader.exec_module(module)
    return module


asl = _script()
DEFINITION = asl.STATEMACHINE / "chunked_ingest.asl.json.tftpl"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    rendered: dict[str, Any] = asl.render(DEFINITION)
    return rendered


def states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, nested ones (a Map's ItemProcessor) included."""
    for name, state in machine["States"].items():
        yield name, state
        if state["Type"] == "Map":
            yield from states(state["ItemProcessor"])


def installed() -> bool:
    return asl.VALIDATOR.exists() and asl.shutil.which("node") is not None


needs_validator = pytest.mark.skipif(
    not installed(), reason="asl-validator not installed (node + `make asl`: npm ci in tools/asl)"
)


@needs_validator
def test_the_definition_passes_the_asl_validator(tmp_path: Path) -> None:
    result = asl.validate([DEFINITION])
    assert result.returncode == 0, result.stdout + result.stderr
    # and the validator does reject a broken one (so the pass above means something)
    broken = asl.render(DEFINITION)
    broken["States"]["StageChunks"]["MaxConcurrency"] = "ten"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    node = asl.shutil.which("node")
    failed = subprocess.run(
        [node, str(asl.VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "MaxConcurrency" in failed.stdout + failed.stderr


def test_every_state_is_reachable_and_every_transition_lands(definition: dict[str, Any]) -> None:
    def walk(machine: dict[str, Any]) -> None:
        names = set(machine["States"])
        seen: set[str] = set()
        todo = [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            assert name in names, name
            seen.add(name)
            state = machine["States"][name]
            targets = [state.get("Next")] + [ch["Next"] for ch in state.get("Choices", [])]
            targets += [state.get("Default")] + [x["Next"] for x in state.get("Catch", [])]
            todo += [t for t in targets if t]
            if state["Type"] == "Map":
                walk(state["ItemProcessor"])
        assert seen == names, names - seen

    walk(definition)


def test_the_maps_are_distributed_over_the_plan_s_chunk_list(definition: dict[str, Any]) -> None:
    maps = {n: s for n, s in definition["States"].items() if s["Type"] == "Map"}
    assert set(maps) == {"StageChunks", "FindRepeats", "SplitChunks"}
    template = DEFINITION.read_text()
    assert template.count('"MaxConcurrency": ${max_concurrency}') == 3
    assert template.count('"ToleratedFailurePercentage": ${tolerated_failure_percentage}') == 3
    # Reduce's Map is over the plan's hash buckets (Map A wrote each chunk's records per bucket)
    buckets = maps.pop("FindRepeats")
    assert buckets["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert buckets["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.job.bucket",
        "Key.$": "$.job.buckets_key",
    }
    assert buckets["ItemSelector"] == {"job.$": "$.job", "bucket.$": "$$.Map.Item.Value.bucket"}
    assert buckets["ResultPath"] is None and buckets["Next"] == "CountRows"
    assert '"buckets": ${buckets}' in template  # Plan's request: Terraform's chunked_buckets
    for state in maps.values():
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        reader = state["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:getObject"
        assert reader["ReaderConfig"]["InputType"] == "JSON"
        assert reader["Parameters"] == {"Bucket.$": "$.job.bucket", "Key.$": "$.job.chunks_key"}
        assert state["ItemSelector"] == {"job.$": "$.job", "chunk.$": "$$.Map.Item.Value"}
        assert state["ResultPath"] is None  # results go to S3, not into the state
        assert [x["Next"] for x in state["Catch"]] == ["ReleaseClaim"]


def test_every_lambda_task_retries_all_but_permanent_errors(definition: dict[str, Any]) -> None:
    tasks = {
        n: s for n, s in states(definition) if s.get("Resource") == "arn:aws:states:::lambda:invoke"
    }
    assert set(tasks) == {
        "Plan",
        "StageChunk",
        "FindBucketRepeats",
        "CountRows",
        "SplitChunk",
        "Assemble",
        "ReleaseClaim",
        "ReleasePlanClaim",
    }
    for name, task in tasks.items():
        first, then = task["Retry"]
        assert first == {"ErrorEquals": ["PermanentError"], "MaxAttempts": 0}, name
        assert then["ErrorEquals"] == ["States.ALL"] and then["MaxAttempts"] >= 1, name
        assert task["Parameters"]["FunctionName"].startswith(asl.ACCOUNT_ARN), name


def test_failures_publish_data_processing_failed(definition: dict[str, Any]) -> None:
    for name in ("PlanFailed", "ChunksFailed"):
        state = definition["States"][name]
        assert state["Resource"] == "arn:aws:states:::events:putEvents"
        (entry,) = state["Parameters"]["Entries"]
        assert entry["Source"] == c.SOURCE_INGESTOR
        assert entry["DetailType"] == c.PROCESSING_FAILED
        assert entry["Detail"]["status"] == "failed"
        assert state["Next"] == "Failed"
    assert definition["States"]["Failed"]["Type"] == "Fail"
    catches = {name: [x["Next"] for x in s.get("Catch", [])] for name, s in states(definition)}
    assert {n for c in catches.values() for n in c} == {
        "ReleasePlanClaim",
        "PlanFailed",
        "ReleaseClaim",
        "ChunksFailed",
    }
    # a failed Plan (timed out, out of memory: its own `except` never ran) releases the
    # claim it recorded for the execution, then publishes, even when the release fails
    assert catches["Plan"] == ["ReleasePlanClaim"]
    plan_release = definition["States"]["ReleasePlanClaim"]
    assert plan_release["Next"] == "PlanFailed" and catches["ReleasePlanClaim"] == ["PlanFailed"]
    assert plan_release["Catch"][0]["ResultPath"] != "$.error"  # Plan's error is published
    assert plan_release["ResultPath"] is None
    assert plan_release["Parameters"]["Payload"] == {"execution.$": "$$.Execution.Id"}
    # after Plan, every failure first releases the execution's claim (then publishes, even
    # when the release fails)
    assert {name for name, c in catches.items() if "ReleaseClaim" in c} == {
        "StageChunks",
        "FindRepeats",
        "CountRows",
        "SplitChunks",
        "Assemble",
    }
    release = definition["States"]["ReleaseClaim"]
    assert release["Next"] == "ChunksFailed" and catches["ReleaseClaim"] == ["ChunksFailed"]
    assert release["Catch"][0]["ResultPath"] != "$.error"  # the step's error is published
    assert release["ResultPath"] is None
    assert release["Parameters"]["Payload"] == {"job.$": "$.job", "execution.$": "$$.Execution.Id"}


def test_release_runs_as_the_execution_with_the_ledger_alone(
    definition: dict[str, Any],
) -> None:
    # the function releases as the execution (the claim's owner), with the ledger and (after
    # a failed Plan) what Plan recorded in the bucket (read only: tests/infra/test_infra_iam)
    assert FUNCTIONS["chunk_release"].handler == "healthpipe.lambdas.chunk_release.handler"
    assert [a.rsplit(".", 1)[-1] for a in FUNCTIONS["chunk_release"].adapters] == [
        "s3",
        "ledger",
        "metrics",
    ]


# --- the Terraform that deploys it (stepfunctions.tf) ----------------------------------------
@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def test_terraform_renders_the_definition_with_every_placeholder(module: Module) -> None:
    machine = module.resource("aws_sfn_state_machine", "this")
    assert attr(machine, "for_each") == "${local.state_machines}"
    assert attr(machine, "definition") == "${each.value.definition}"
    assert module.local("state_machines")["chunked"]["definition"] == (
        "${local.chunked_definition}"
    )
    expression = squash(module.local("chunked_definition"))
    assert expression.startswith(
        '${templatefile("${path.module}/statemachine/chunked_ingest.asl.json.tftpl",merge('
    )
    given = set(re.findall(r"'(\w+)':", expression)) | set(module.local("chunked_functions"))
    assert asl.placeholders(DEFINITION.read_text()) <= given
    assert "name=>aws_lambda_function.this[f].arn" in expression


def test_each_task_invokes_the_function_of_its_step(definition: dict[str, Any]) -> None:
    # the Terraform's template variable -> function, and the function -> its handler
    template = DEFINITION.read_text()
    wanted = {
        "Plan": ("plan_function_arn", "chunk_plan", "chunk_plan"),
        "StageChunk": ("map_function_arn", "chunk_map", "chunk_map"),
        "FindBucketRepeats": ("reduce_function_arn", "chunk_reduce", "chunk_reduce"),
        "CountRows": ("reduce_function_arn", "chunk_reduce", "chunk_reduce"),
        "SplitChunk": ("split_function_arn", "chunk_split", "chunk_split"),
        "Assemble": ("assemble_function_arn", "chunk_assemble", "chunk_assemble"),
        "ReleaseClaim": ("release_function_arn", "chunk_release", "chunk_release"),
        "ReleasePlanClaim": ("release_function_arn", "chunk_release", "chunk_release"),
    }
    functions = load_module().local("chunked_functions")
    found = dict(states(definition))
    for state, (variable, function, module_name) in wanted.items():
        assert f'"FunctionName": "${{{variable}}}"' in template
        assert functions[variable] == function
        assert found[state]["Parameters"]["FunctionName"] == asl.stand_in(variable)
        assert FUNCTIONS[function].handler == f"healthpipe.lambdas.{module_name}.handler"
    assert set(functions.values()) == {f for f in FUNCTIONS if f.startswith("chunk_")}


def test_the_state_machine_logs_traces_and_encrypts(module: Module) -> None:
    machine = module.resource("aws_sfn_state_machine", "this")
    assert attr(machine, "role_arn") == "${aws_iam_role.state_machine[each.key].arn}"
    logging = attr(machine, "logging_configuration")
    assert attr(logging, "include_execution_data") is False  # no payloads in the logs
    assert attr(logging, "level") == "ERROR"
    assert attr(logging, "log_destination") == (
        "${aws_cloudwatch_log_group.state_machine[each.key].arn}:*"
    )
    assert attr(attr(machine, "tracing_configuration"), "enabled") == "${var.tracing_enabled}"
    encryption = attr(machine, "encryption_configuration")
    assert attr(encryption, "kms_key_id") == "${aws_kms_key.this.arn}"
    group = module.resource("aws_cloudwatch_log_group", "state_machine")
    assert attr(group, "kms_key_id") == "${aws_kms_key.this.arn}"
    assert attr(group, "name") == "/aws/vendedlogs/states/${each.value.name}"
    assert module.local("state_machines")["chunked"]["name"] == "${local.chunked_name}"


def role_statements(module: Module, machine: str) -> dict[str, dict[str, Any]]:
    """The statements of `machine`'s role (state_machines.tf, one policy per entry of
    local.state_machines), by sid, with the entry's values in place of `each.value.*`."""
    entry = module.local("state_machines")[machine]
    document = module.data["aws_iam_policy_document"]["state_machine"]
    assert attr(document, "for_each") == "${local.state_machines}"
    return {
        each_value(attr(s, "sid"), entry): {k: each_value(attr(s, k), entry) for k in s}
        for s in document["statement"]
    }


def test_the_state_machine_role_is_least_privilege(module: Module) -> None:
    statements = role_statements(module, "chunked")
    invoke = statements["InvokeChunkFunctions"]
    assert invoke["actions"] == ["lambda:InvokeFunction"]
    assert squash(invoke["resources"]) == (
        "${flatten([forarnineach.value.function_arns:['${arn}','${arn}:*']])}"
    )
    arns = squash(module.local("state_machines")["chunked"]["function_arns"])
    assert arns == "${[forfinvalues(local.chunked_functions):aws_lambda_function.this[f].arn]}"
    assert statements["ReadChunkLists"]["resources"] == ["${local.data_bucket_arn}/work/*"]
    assert statements["PublishFailures"]["actions"] == ["events:PutEvents"]
    assert statements["RunMapChildren"]["resources"] == ["${local.chunked_arn}"]
    # "*" only where AWS takes no resource (vended log delivery, X-Ray)
    for sid, statement in statements.items():
        if statement["resources"] == ["*"]:
            assert sid in {"DeliverLogs", "WriteTraces"}, sid
        assert all("*" not in action for action in statement["actions"]), sid


def test_failed_executions_and_undelivered_large_uploads_raise_alarms(module: Module) -> None:
    executions = module.resource("aws_cloudwatch_metric_alarm", "state_machine_executions")
    assert attr(executions, "namespace") == "AWS/States"
    assert attr(executions, "dimensions") == {
        "StateMachineArn": "${aws_sfn_state_machine.this[each.value.machine].arn}"
    }
    alarms = squash(module.local("state_machine_execution_alarms"))
    assert "setproduct(keys(local.state_machines),['ExecutionsFailed','ExecutionsTimedOut'])" in (
        alarms
    )
    rule = module.resource("aws_cloudwatch_metric_alarm", "state_machine_rule_failures")
    assert attr(rule, "for_each") == "${local.state_machines}"
    assert attr(rule, "dimensions") == {
        "RuleName": "${aws_cloudwatch_event_rule.state_machine[each.key].name}"
    }
    for alarm in (executions, rule):
        assert attr(alarm, "alarm_actions") == "${local.alarm_actions}"


# --- one shape for both state machines (state_machines.tf): the former addresses moved -----
FORMER = {  # the per-machine resources before state_machines.tf => where each one is now
    "aws_cloudwatch_log_group": "state_machine",
    "aws_sfn_state_machine": "this",
    "aws_iam_role": "state_machine",
    "aws_iam_role_policy": "state_machine",
    "aws_cloudwatch_event_rule": "state_machine",
    "aws_cloudwatch_event_target": "state_machine",
}
FORMER_START = {"aws_iam_role": "state_machine_start", "aws_iam_role_policy": "state_machine_start"}


def test_every_former_address_of_the_two_state_machines_is_moved(module: Module) -> None:
    machines = set(module.local("state_machines"))
    assert machines == {"chunked", "grouped_analyze"}
    expected: set[tuple[str, str]] = set()
    for machine in machines:
        for kind, name in FORMER.items():
            expected.add((f"{kind}.{machine}", f'{kind}.{name}["{machine}"]'))
        for kind, name in FORMER_START.items():
            expected.add((f"{kind}.{machine}_start", f'{kind}.{name}["{machine}"]'))
        alarm = "aws_cloudwatch_metric_alarm"
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
            expected.add(
                (
                    f'{alarm}.{machine}_executions["{metric}"]',
                    f'{alarm}.state_machine_executions["{machine}.{metric}"]',
                )
            )
        expected.add(
            (
                f"{alarm}.{machine}_rule_failures",
                f'{alarm}.state_machine_rule_failures["{machine}"]',
            )
        )
    moved = {
        (a.removeprefix("${").removesuffix("}"), b.removeprefix("${").removesuffix("}"))
        for a, b in module.moved
    }
    assert moved == expected
    for former, now in moved:  # nothing left at a former address; each new one declared
        kind, name = former.split("[")[0].split(".")
        assert name not in module.resources[kind], former
        kind, name = now.split("[")[0].split(".")
        assert name in module.resources[kind], now
