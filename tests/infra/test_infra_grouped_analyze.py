"""The Step Functions definition of the grouped analysis
(infra/terraform/statemachine/grouped_analyze.asl.json.tftpl) and its Terraform
(grouped_analyze.tf): every placeholder rendered, each task on its function, a bounded
Distributed Map with per-item retries and no tolerated failure, a failure branch that releases
the claim and publishes Data Analysis Failed, a least-privilege role, alarms. The validator
itself runs on every definition (scripts/validate_asl.py, `make asl`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from infra_terraform import Module, attr, load_module, squash
from test_infra_statemachine import asl, installed, states

from healthpipe import constants as c
from healthpipe.lambdas import FUNCTIONS

DEFINITION = asl.STATEMACHINE / "grouped_analyze.asl.json.tftpl"


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    rendered: dict[str, Any] = asl.render(DEFINITION)
    return rendered


@pytest.mark.skipif(not installed(), reason="asl-validator not installed (`make asl`)")
def test_the_definition_passes_the_asl_validator() -> None:
    result = asl.validate([DEFINITION])
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_renders_the_definition_with_every_placeholder(module: Module) -> None:
    machine = module.resource("aws_sfn_state_machine", "this")
    assert attr(machine, "definition") == "${each.value.definition}"
    assert module.local("state_machines")["grouped_analyze"]["definition"] == (
        "${local.grouped_analyze_definition}"
    )
    expression = squash(module.local("grouped_analyze_definition"))
    assert expression.startswith(
        '${templatefile("${path.module}/statemachine/grouped_analyze.asl.json.tftpl",merge('
    )
    functions = module.local("grouped_analyze_functions")
    given = set(re.findall(r"'(\w+)':", expression)) | set(functions)
    assert asl.placeholders(DEFINITION.read_text()) <= given
    assert "'group_rows':'${var.grouped_analyze_group_rows}'" in expression


def test_each_task_invokes_the_function_of_its_step(
    definition: dict[str, Any], module: Module
) -> None:
    wanted = {
        "Prepare": "analyze_prepare",
        "AnalyzeGroup": "analyze_group",
        "Merge": "analyze_merge",
        "ReleaseClaim": "analyze_release",
    }
    functions = module.local("grouped_analyze_functions")
    found = dict(states(definition))
    for state, function in wanted.items():
        variable = f"{function}_function_arn"
        assert functions[variable] == function
        assert found[state]["Parameters"]["FunctionName"] == asl.stand_in(variable)
        assert FUNCTIONS[function].handler == f"healthpipe.lambdas.{function}.handler"
    assert set(functions.values()) == {f for f in FUNCTIONS if f.startswith("analyze_")}


def test_the_map_is_bounded_retried_per_group_and_tolerates_no_failure(
    definition: dict[str, Any], module: Module
) -> None:
    template = DEFINITION.read_text()
    groups = definition["States"]["AnalyzeGroups"]
    assert groups["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert groups["ItemReader"]["Parameters"] == {
        "Bucket.$": "$.job.bucket",
        "Key.$": "$.job.groups_key",
    }
    assert groups["ItemSelector"] == {"job.$": "$.job", "group.$": "$$.Map.Item.Value"}
    assert groups["ResultPath"] is None and groups["Next"] == "Merge"
    assert '"MaxConcurrency": ${max_concurrency}' in template
    assert module.local("grouped_analyze_tolerated_failure_percentage") == 0
    item = groups["ItemProcessor"]["States"]["AnalyzeGroup"]
    assert [r["ErrorEquals"] for r in item["Retry"]] == [["PermanentError"], ["States.ALL"]]
    assert item["Retry"][0]["MaxAttempts"] == 0
    # a failure after Prepare: the claim released, then Data Analysis Failed, then Fail
    for name in ("AnalyzeGroups", "Merge"):
        assert definition["States"][name]["Catch"][0]["Next"] == "ReleaseClaim"
    assert definition["States"]["ReleaseClaim"]["Next"] == "AnalysisFailed"
    for name in ("AnalysisFailed", "PrepareFailed"):
        (entry,) = definition["States"][name]["Parameters"]["Entries"]
        assert entry["Source"] == c.SOURCE_ANALYZER
        assert entry["DetailType"] == c.ANALYSIS_FAILED
        assert definition["States"][name]["Next"] == "Failed"


def test_the_state_machine_is_logged_encrypted_and_its_role_least_privilege(
    module: Module,
) -> None:
    # the same resources as the chunked ingest's (state_machines.tf, one per entry of
    # local.state_machines: test_infra_statemachine checks their shape), with its own entry
    from test_infra_statemachine import role_statements

    machine = module.resource("aws_sfn_state_machine", "this")
    assert attr(attr(machine, "logging_configuration"), "include_execution_data") is False
    encryption = attr(machine, "encryption_configuration")
    assert attr(encryption, "kms_key_id") == "${aws_kms_key.this.arn}"
    entry = module.local("state_machines")["grouped_analyze"]
    assert entry["name"] == "${local.grouped_analyze_name}"
    assert module.local("grouped_analyze_name") == "${var.name_prefix}-grouped-analyze"
    statements = role_statements(module, "grouped_analyze")
    invoke = statements["InvokeGroupedAnalyzeFunctions"]
    assert invoke["actions"] == ["lambda:InvokeFunction"]
    assert "forfinvalues(local.grouped_analyze_functions)" in squash(entry["function_arns"])
    assert statements["ReadGroupLists"]["resources"] == ["${local.data_bucket_arn}/work/analyze/*"]
    assert statements["RunMapChildren"]["resources"] == ["${local.grouped_analyze_arn}"]
    for sid, statement in statements.items():
        if statement["resources"] == ["*"]:
            assert sid in {"DeliverLogs", "WriteTraces"}, sid
        assert all("*" not in action for action in statement["actions"]), sid
    executions = module.resource("aws_cloudwatch_metric_alarm", "state_machine_executions")
    assert attr(executions, "for_each") == "${local.state_machine_execution_alarms}"
    assert "grouped-analysis" in entry["executions"]
    assert entry["rule_name"] == "${var.name_prefix}-processing-complete-large"
