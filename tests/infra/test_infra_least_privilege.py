"""Least privilege of the functions' roles and of the key, resolved from the Terraform the way
AWS would evaluate it (tests/infra/iam_policy.py): what issue 14 found over-granted, and the
grants the runtime needs (the ingestor reads the event's object version)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest
from iam_policy import Deployment, function_policies
from infra_terraform import Module, attr, load_module, squash

from healthpipe import constants as c
from healthpipe.lambdas import FUNCTIONS

SRC = Path(importlib.import_module("healthpipe").__file__ or "").parent


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def statement(module: Module, function: str, sid: str) -> dict[str, object]:
    [found] = [s for s in function_policies(module)[function] if s["Sid"] == sid]
    return found


def actions_of(module: Module, function: str) -> set[str]:
    return {a for s in function_policies(module)[function] for a in s["Action"]}


# --- the analyses table: the notifier only reads ------------------------------------------
def _stage_modules(function: str) -> list[str]:
    handler = importlib.import_module(FUNCTIONS[function].handler.rsplit(".", 1)[0])
    return sorted({path.split(":")[0] for path in handler._function.stages.values()})


def _healthpipe_closure(modules: list[str]) -> set[Path]:
    """The source files of `modules` and every healthpipe module they import (transitively),
    adapters excluded (stages see ports only)."""
    seen: set[Path] = set()
    queue = list(modules)
    while queue:
        name = queue.pop()
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, AttributeError):  # `from module import function`
            continue
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        path = Path(spec.origin)
        if path in seen or ".adapters." in f".{name}.":
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("healthpipe"):
                    queue.append(node.module)
                    queue.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                queue.extend(a.name for a in node.names if a.name.startswith("healthpipe"))
    return seen


def analysis_store_calls(function: str) -> set[str]:
    """Methods called on `<anything>.analyses` in the code the function's stages run."""
    called: set[str] = set()
    for path in _healthpipe_closure(_stage_modules(function)):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "analyses"
            ):
                called.add(node.func.attr)
    return called


def test_the_code_scan_finds_the_analyzer_s_write_and_the_digest_s_read() -> None:
    assert "save" in analysis_store_calls("analyzer")
    assert "recent" in analysis_store_calls("notifier")


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_read_only_adapters_are_the_ones_the_stages_never_write_through(
    function: str, module: Module
) -> None:
    writes = analysis_store_calls(function) & {"save"}
    uses_store = "healthpipe.adapters.aws.analysis_store" in FUNCTIONS[function].adapters
    read_only = "analysis_store" in module.local("read_only_adapters")[function]
    assert read_only == (uses_store and not writes)


def test_the_notifier_cannot_write_the_analyses_table(module: Module) -> None:
    assert "dynamodb:BatchWriteItem" not in actions_of(module, "notifier")
    assert {"dynamodb:GetItem", "dynamodb:Query"} <= actions_of(module, "notifier")
    assert "dynamodb:BatchWriteItem" in actions_of(module, "analyzer")


# --- SES: the sender identity and the configuration set only --------------------------------
def test_send_raw_email_does_not_cover_the_recipient_identities(module: Module) -> None:
    deployment = Deployment(sender_email="from@example.com")
    [send] = [
        s
        for s in function_policies(module, deployment)["notifier"]
        if s["Sid"] == "SendReportEmail"
    ]
    assert send["Resource"] == [
        "arn:aws:ses:us-east-1:123456789012:identity/from@example.com",
        "arn:aws:ses:us-east-1:123456789012:configuration-set/healthpipe-reports",
    ]
    assert "for identity in" not in squash(module.local("ses_resources"))


# --- S3 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_list_bucket_is_limited_to_the_function_s_prefixes(function: str, module: Module) -> None:
    if "s3" not in module.local("function_adapters")[function]:  # no S3 statement at all
        assert not any("s3:" in a for a in actions_of(module, function)), function
        return
    listing = statement(module, function, "ListDataBucket")
    prefixes = module.local("s3_prefixes")[function]
    wanted = list(dict.fromkeys([*prefixes["read"], *prefixes["write"]]))
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{p}*" for p in wanted]}}
    assert listing["Resource"] == ["arn:aws:s3:::healthpipe-data-123456789012-us-east-1"]


def test_the_ingestor_may_read_the_event_s_object_version_under_raw_only(module: Module) -> None:
    read = statement(module, "ingestor", "ReadObjects")
    assert "s3:GetObjectVersion" in read["Action"]
    assert read["Resource"] == [
        f"arn:aws:s3:::healthpipe-data-123456789012-us-east-1/{c.RAW_PREFIX}*"
    ]


# --- the key policy -----------------------------------------------------------------------
def test_the_alarms_key_statement_is_limited_to_this_account_s_alarms(module: Module) -> None:
    document = module.data["aws_iam_policy_document"]["kms"]
    [alarms] = [
        s for s in document["statement"] if attr(s, "sid") == "CloudWatchAlarmsUseEncryptedTopic"
    ]
    conditions = {attr(cond, "variable"): cond for cond in alarms["condition"]}
    assert attr(conditions["aws:SourceAccount"], "values") == ["${local.account_id}"]
    source = conditions["aws:SourceArn"]
    assert attr(source, "test") == "ArnLike"
    assert attr(source, "values") == [
        "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"
    ]
    # every alarm of the module is named <prefix>-... (a state machine's alarms after its
    # name or its rule's: state_machines.tf)
    machines = module.local("state_machines").values()
    named = {
        "${local.state_machines[each.value.machine].name}-": [m["name"] for m in machines],
        "${each.value.rule_name}-": [m["rule_name"] for m in machines],
    }
    for names in named.values():  # each name a state machine's alarms are named after
        resolved = [module.local(n[8:-1]) if n.startswith("${local.") else n for n in names]
        assert all(n.startswith("${var.name_prefix}-") for n in resolved), resolved
    for name, alarm in module.resources["aws_cloudwatch_metric_alarm"].items():
        alarm_name = str(attr(alarm, "alarm_name"))
        assert alarm_name.startswith(("${var.name_prefix}-", "${each.value.name}-", *named)), name


# --- the Lambda settings ----------------------------------------------------------------------
def test_memory_gives_a_full_vcpu_to_ingest_and_analyze_and_arm64_is_the_default(
    module: Module,
) -> None:
    memory = squash(attr(module.variables["lambda_memory_mb"], "type"))
    assert "'ingestor':'${optional(number,1769)}'" in memory
    assert "'analyzer':'${optional(number,1769)}'" in memory
    assert attr(module.variables["architecture"], "default") == "arm64"
    function = module.resource("aws_lambda_function", "this")
    assert attr(function, "memory_size") == "${var.lambda_memory_mb[each.key]}"
    assert attr(function, "timeout") == "${var.lambda_timeout_seconds[each.key]}"
    storage = attr(attr(function, "ephemeral_storage"), "size")
    assert storage == "${var.lambda_ephemeral_storage_mb[each.key]}"
    storage_type = squash(attr(module.variables["lambda_ephemeral_storage_mb"], "type"))
    assert all(f"'{f}':'${{optional(number," in storage_type for f in FUNCTIONS)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
