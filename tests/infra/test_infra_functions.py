"""Code <-> infra: the Lambda functions Terraform deploys are the ones the code declares
(`healthpipe.lambdas.FUNCTIONS`), their handlers import, and every environment variable the
code reads is set by Terraform, with a value the code's Settings accept."""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Any

import pytest
from infra_terraform import TERRAFORM, Module, attr, load_module, squash

from healthpipe import constants as c
from healthpipe.config import Settings, load_settings
from healthpipe.lambdas import FUNCTIONS
from healthpipe.stages.settings import AnalyzeSettings, NotifySettings


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def test_terraform_deploys_exactly_the_functions_the_code_declares(module: Module) -> None:
    handlers = module.local("handlers")
    assert handlers == {name: spec.handler for name, spec in FUNCTIONS.items()}
    assert module.local("functions") == "${toset(keys(local.handlers))}"
    function = module.resource("aws_lambda_function", "this")
    assert attr(function, "for_each") == "${local.functions}"
    assert attr(function, "handler") == "${local.handlers[each.key]}"
    assert attr(function, "runtime") == "python${local.python_version}"
    assert module.local("python_version") == "3.12"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_handler_path_exists_and_imports(name: str) -> None:
    module_path, _, function = FUNCTIONS[name].handler.rpartition(".")
    handler = getattr(importlib.import_module(module_path), function)
    assert callable(handler)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_terraform_sets_exactly_the_settings_the_function_reads(name: str, module: Module) -> None:
    settings = module.local("function_settings")[name]
    assert len(settings) == len(set(settings)), "duplicate setting"
    assert set(settings) == set(FUNCTIONS[name].settings)
    known = set(Settings.model_fields)
    assert set(settings) <= known
    values = module.local("setting_values")
    for field in settings:
        assert field in values or field == "lease_seconds", f"no Terraform value for {field}"


# the local runtime's process pool: a Lambda analyses in one process (bootstrap gives the
# analyze stage no groups on AWS)
LOCAL_ONLY = {"workers"}


@pytest.mark.parametrize(
    ("function", "stage_settings"),
    [("analyzer", AnalyzeSettings), ("notifier", NotifySettings)],
)
def test_the_function_reads_every_setting_its_stage_takes(
    function: str, stage_settings: type[Any]
) -> None:
    """A stage setting named as a Settings field reaches the Lambda from its environment;
    one left out silently runs at its default on AWS (baseline_window_days did)."""
    taken = {f.name for f in dataclasses.fields(stage_settings)} & set(Settings.model_fields)
    assert taken - set(FUNCTIONS[function].settings) - LOCAL_ONLY == set()


def test_the_environment_is_built_from_those_settings_under_the_code_s_names(
    module: Module,
) -> None:
    expression = module.local("function_environment")
    assert f'"{c.ENV_PREFIX}${{upper(field)}}"' in expression
    assert "for field in local.function_settings[f]" in expression
    assert module.local("base_environment") == {
        c.ENV_RUNTIME: "aws",
        "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # the Powertools Tracer is on exactly when Lambda's tracing is Active
        "POWERTOOLS_TRACE_DISABLED": "${tostring(!var.tracing_enabled)}",
    }
    tracing = attr(attr(module.resource("aws_lambda_function", "this"), "tracing_config"), "mode")
    assert tracing == '${var.tracing_enabled ? "Active" : "PassThrough"}'
    assert "local.base_environment" in expression
    assert "POWERTOOLS_SERVICE_NAME" in expression and "healthpipe-${f}" in expression
    function = module.resource("aws_lambda_function", "this")
    environment = attr(function, "environment")
    assert attr(environment, "variables") == "${local.function_environment[each.key]}"


def _resolve(expression: Any, module: Module) -> str:
    """The value Terraform would give a setting, for the expressions used in setting_values:
    literals, `var.X` / `tostring(var.X)` from the variable defaults, and realistic stand-ins
    for resource attributes (known only after apply)."""
    text = str(expression)
    if not text.startswith("${"):
        return text
    inner = text[2:-1]
    variables = module.variables
    stand_ins = {
        "aws_s3_bucket.data.bucket": "healthpipe-data-123456789012-us-east-1",
        "aws_kms_key.this.arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab",
        "aws_dynamodb_table.ledger.name": "healthpipe-ledger",
        "aws_dynamodb_table.analyses.name": "healthpipe-analyses",
        "aws_cloudwatch_event_bus.this.name": "healthpipe-bus",
        "aws_sesv2_configuration_set.this.configuration_set_name": "healthpipe-reports",
        "local.pseudonym_secret": "s3cr3t" * 8,
        "local.bedrock_region": "us-east-1",
        "local.bedrock_model_id": "us.amazon.nova-lite-v1:0",
        'join(",",var.recipient_emails)': "a@example.com,b@example.com",
        "var.sender_email": "reports@example.com",
    }
    if inner in stand_ins:
        return stand_ins[inner]
    match = re.fullmatch(r"(?:tostring\()?var\.(\w+)\)?", inner)
    assert match, f"unexpected expression in setting_values: {text}"
    default = attr(variables[match.group(1)], "default")
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_values_terraform_sets_are_accepted_by_the_code_s_settings(
    name: str, module: Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the environment Terraform gives this function (lease = timeout + 60)
    values = module.local("setting_values")
    timeout = attr(module.variables["lambda_timeout_seconds"], "type")
    assert "optional(number" in timeout
    env = {c.ENV_RUNTIME: "aws"}
    for field in FUNCTIONS[name].settings:
        if field == "lease_seconds":
            env["HEALTHPIPE_LEASE_SECONDS"] = "360"
        else:
            env[f"{c.ENV_PREFIX}{field.upper()}"] = _resolve(values[field], module)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # WHEN the code loads its settings the way the Lambda does
    settings = load_settings()
    # THEN every variable was read into its field
    assert settings.runtime == "aws"
    for field in FUNCTIONS[name].settings:
        value = getattr(settings, field)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        raw = env[f"{c.ENV_PREFIX}{field.upper()}"]
        if field == "email_to":
            assert value == raw.split(","), field
        elif isinstance(value, bool):
            assert value is (raw == "true"), field
        elif isinstance(value, int | float):
            assert float(value) == float(raw), field
        else:
            assert str(value) == raw, field


def test_the_lease_outlives_the_function_timeout(module: Module) -> None:
    expression = squash(module.local("lease_seconds"))
    assert ":var.lambda_timeout_seconds[f]+60" in expression
    # the chunked ingest's claim is the execution's, from Plan to Assemble
    assert (
        "contains(['chunk_plan','chunk_assemble'],f)?var.chunked_timeout_seconds+60" in expression
    )
    # the grouped analysis's, from Prepare to Merge
    assert (
        "contains(['analyze_prepare','analyze_merge'],f)?var.grouped_analyze_timeout_seconds+60"
        in expression
    )
    for name in ("chunked_ingest", "grouped_analyze"):
        definition = TERRAFORM / "statemachine" / f"{name}.asl.json.tftpl"
        assert '"TimeoutSeconds": ${timeout_seconds}' in definition.read_text()


def test_every_function_has_a_per_function_role_log_group_and_failure_destination(
    module: Module,
) -> None:
    function = module.resource("aws_lambda_function", "this")
    assert attr(function, "role") == "${aws_iam_role.function[each.key].arn}"
    assert attr(module.resource("aws_iam_role", "function"), "for_each") == "${local.functions}"
    group = module.resource("aws_cloudwatch_log_group", "function")
    assert attr(group, "kms_key_id") == "${aws_kms_key.this.arn}"
    assert attr(group, "retention_in_days") == "${var.log_retention_days}"
    invoke = module.resource("aws_lambda_function_event_invoke_config", "this")
    on_failure = attr(attr(invoke, "destination_config"), "on_failure")
    assert attr(on_failure, "destination") == "${aws_sqs_queue.dlq[each.key].arn}"
    # nothing reserved unless asked: a new account (quota 10) can deploy the defaults
    concurrency = attr(function, "reserved_concurrent_executions")
    assert squash(concurrency) == "${coalesce(var.lambda_reserved_concurrency[each.key],-1)}"
    reserved = module.variables["lambda_reserved_concurrency"]
    assert attr(reserved, "default") == {}
    assert squash(attr(reserved, "type")).count("optional(number)") == len(FUNCTIONS)
    assert "analyzer_reserved_concurrency" not in module.variables


def test_contract_names(module: Module) -> None:
    names = module.local("names")
    assert names["ledger_table"] == "${var.name_prefix}-ledger"
    assert names["analyses_table"] == "${var.name_prefix}-analyses"
    assert names["bus"] == "${var.name_prefix}-bus"
    assert names["alerts_topic"] == "${var.name_prefix}-alerts"
    dlqs = module.local("dlq_names")
    assert '"${var.name_prefix}-${f}-dlq"' in dlqs
    assert attr(module.variables["name_prefix"], "default") == "healthpipe"
