"""Code <-> infra, IAM: every action an adapter declares (`IAM_ACTIONS` next to the adapter) is
granted to exactly the functions that use that adapter (`healthpipe.lambdas.FUNCTIONS`), and
nothing else is granted but the two platform statements Lambda needs. One role per function;
no Allow statement anywhere under infra/ has a `*` action."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import hcl2
import pytest
from iam_policy import function_policies
from infra_terraform import TERRAFORM, Module, attr, load_module, squash, tf_files

from healthpipe import constants as c
from healthpipe.adapters.aws.s3 import ERASURE_IAM_ACTIONS
from healthpipe.domain.identity import LAKE_PREFIX
from healthpipe.lambdas import FUNCTIONS
from healthpipe.stages.chunked import EXECUTIONS_PREFIX

AWS_ADAPTERS = "healthpipe.adapters.aws."
# What Lambda itself needs for a function, whatever its code does.
PLATFORM_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def adapter_name(path: str) -> str:
    assert path.startswith(AWS_ADAPTERS), path
    return path.removeprefix(AWS_ADAPTERS)


def declared_actions(adapter: str) -> set[str]:
    return set(importlib.import_module(AWS_ADAPTERS + adapter).IAM_ACTIONS)


# What a function gets beside its adapters' calls: Lambda's SQS event source (the analyzer
# polls its queue) and X-Ray (when tracing is on).
EVENT_SOURCE_ACTIONS = {
    "analyzer": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
}
TRACING_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# What the functions ending a chunked-ingest execution need to delete Plan's record of it
# (stages/chunked.forget_execution: `ObjectStore.delete`, every version: DeleteObject, then
# the adapter's erasure calls), on work/executions/ only.
EXECUTION_RECORD_FUNCTIONS = {"chunk_plan", "chunk_assemble", "chunk_release"}
EXECUTION_RECORD_ACTIONS = {"s3:DeleteObject", *ERASURE_IAM_ACTIONS}
# The write methods of the AnalysisStore port (ports.py): a function whose stages call none
# of them gets only the read statements of the analysis_store adapter.
ANALYSIS_STORE_WRITES = {"save"}


def granted(module: Module) -> dict[str, set[str]]:
    """function -> actions its policy grants, as function_statements assembles them."""
    return {
        function: {a for s in statements for a in s["Action"]}
        for function, statements in function_policies(module).items()
    }


def write_actions(adapter: str, module: Module) -> set[str]:
    blocks = module.local("adapter_statements")[adapter]
    return {a for s in blocks if s.get("access") == "write" for a in s["actions"]}


def test_terraform_knows_the_adapters_each_function_uses(module: Module) -> None:
    adapters = module.local("function_adapters")
    assert set(adapters) == set(FUNCTIONS)
    for name, spec in FUNCTIONS.items():
        assert sorted(adapters[name]) == sorted(adapter_name(a) for a in spec.adapters), name


def test_each_adapter_s_statements_hold_exactly_its_declared_actions(module: Module) -> None:
    statements = module.local("adapter_statements")
    used = {adapter_name(a) for spec in FUNCTIONS.values() for a in spec.adapters}
    assert used <= set(statements)
    for adapter, blocks in statements.items():
        actions = [a for block in blocks for a in block["actions"]]
        assert len(actions) == len(set(actions)), f"{adapter}: an action is granted twice"
        assert set(actions) == declared_actions(adapter), adapter


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_function_is_granted_its_adapters_actions_and_only_those(
    function: str, module: Module
) -> None:
    read_only = set(module.local("read_only_adapters")[function])
    needed: set[str] = set()
    for adapter in FUNCTIONS[function].adapters:
        name = adapter_name(adapter)
        needed |= declared_actions(name) - (
            write_actions(name, module) if name in read_only else set()
        )
    extra = EVENT_SOURCE_ACTIONS.get(function, set()) | TRACING_ACTIONS
    if function in EXECUTION_RECORD_FUNCTIONS:
        extra |= EXECUTION_RECORD_ACTIONS
    assert granted(module)[function] == needed | PLATFORM_ACTIONS | extra


def test_only_the_functions_ending_an_execution_delete_and_only_plan_s_records(
    module: Module,
) -> None:
    policies = function_policies(module)
    bucket = "arn:aws:s3:::healthpipe-data-123456789012-us-east-1"
    for function, statements in policies.items():
        deleting = [
            s for s in statements if set(s["Action"]) & {a for a in EXECUTION_RECORD_ACTIONS}
        ]
        if function not in EXECUTION_RECORD_FUNCTIONS:
            assert deleting == [], function
            continue
        by_sid = {s["Sid"]: s for s in deleting}
        assert set(by_sid) == {"DeleteExecutionRecords", "ListExecutionRecordVersions"}
        delete = by_sid["DeleteExecutionRecords"]
        assert delete["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
        assert delete["Resource"] == [f"{bucket}/{EXECUTIONS_PREFIX}*"], function
        versions = by_sid["ListExecutionRecordVersions"]
        assert versions["Action"] == ["s3:ListBucketVersions"]
        assert versions["Resource"] == [bucket]
        assert versions["Condition"] == {"StringLike": {"s3:prefix": [f"{EXECUTIONS_PREFIX}*"]}}


def test_every_declared_action_is_granted_to_exactly_the_functions_using_its_adapter(
    module: Module,
) -> None:
    grants = granted(module)
    adapters = {adapter_name(a) for spec in FUNCTIONS.values() for a in spec.adapters}
    for adapter in adapters:
        users = {f for f, spec in FUNCTIONS.items() if AWS_ADAPTERS + adapter in spec.adapters}
        for action in declared_actions(adapter):
            # functions whose adapters declare this action (this adapter's users, or another
            # adapter declaring the same action, e.g. kms:Decrypt)
            declaring = {
                f
                for f, spec in FUNCTIONS.items()
                if any(action in declared_actions(adapter_name(a)) for a in spec.adapters)
            }
            holders = {f for f, actions in grants.items() if action in actions}
            read_only = {
                f
                for f in users
                if adapter in module.local("read_only_adapters")[f]
                and action in write_actions(adapter, module)
            }
            assert users - read_only <= holders == declaring - read_only, (adapter, action)


def test_the_policy_document_is_assembled_from_those_statements(module: Module) -> None:
    grants = squash(module.local("function_grants"))
    assert "foradapterinlocal.function_adapters[f]:[forstinlocal.adapter_statements[adapter]" in (
        grants
    )
    assert 'if!contains(local.read_only_adapters[f],adapter)||try(st.access,"read")!="write"' in (
        grants
    )
    for part in (
        "platform_statements",
        "event_source_statements[f]",
        "execution_record_statements[f]",
        "tracing_statements",
    ):
        assert f"local.{part}" in grants, part
    expression = squash(module.local("function_statements"))
    assert "forfinlocal.functions:f=>[fori,sinlocal.function_grants[f]:" in expression
    assert "local.function_resources[f][s.scope]" in expression
    assert "local.function_resources[f][c.scope]" in expression
    document = module.data["aws_iam_policy_document"]["function"]
    statement = attr(document, "dynamic")["statement"]
    assert attr(statement, "for_each") == "${local.function_statements[each.key]}"
    content = attr(statement, "content")
    assert attr(content, "actions") == "${statement.value.actions}"
    assert attr(content, "effect") == "Allow"
    policy = module.resource("aws_iam_role_policy", "function")
    assert attr(policy, "role") == "${aws_iam_role.function[each.key].id}"
    assert attr(policy, "policy") == "${data.aws_iam_policy_document.function[each.key].json}"


def test_no_function_policy_grants_an_action_on_a_resource_twice(module: Module) -> None:
    # a key both the bucket and the ledger table are encrypted with is one permission: the
    # s3 and ledger adapters share its statement (one sid), granted once to a function
    # using both
    for function, statements in function_policies(module).items():
        pairs = [(a, r) for s in statements for a in s["Action"] for r in s["Resource"]]
        repeated = sorted({pair for pair in pairs if pairs.count(pair) > 1})
        assert repeated == [], (function, repeated)
        sids = [s["Sid"] for s in statements]
        assert len(sids) == len(set(sids)), (function, sids)


def test_statements_sharing_a_sid_are_one_permission(module: Module) -> None:
    # function_statements keeps the first statement of each sid: the others must grant the
    # same thing, or a permission would be dropped
    by_sid: dict[str, list[Any]] = {}
    blocks = [s for b in module.local("adapter_statements").values() for s in b]
    for block in [*blocks, *module.local("platform_statements")]:
        by_sid.setdefault(block["sid"], []).append(
            (block["actions"], block["scope"], block.get("conditions"), block.get("access"))
        )
    for sid, grants in by_sid.items():
        assert all(g == grants[0] for g in grants), sid
    expression = squash(module.local("function_statements"))
    assert "if!contains([forearlierinslice(local.function_grants[f],0,i):earlier.sid],s.sid)" in (
        expression
    )


def test_function_roles_carry_no_other_policy(module: Module) -> None:
    assert "aws_iam_role_policy_attachment" not in module.resources
    assert "aws_iam_policy" not in module.resources
    assert set(module.resources["aws_iam_role_policy"]) == {
        "function",
        "scheduler",
        "state_machine",  # each state machine's role (state_machines.tf)
        "state_machine_start",  # EventBridge starting it
    }
    role = module.resource("aws_iam_role", "function")
    assert "managed_policy_arns" not in role and "inline_policy" not in role
    assert attr(role, "name") == "${var.name_prefix}-${each.key}"


def test_every_statement_has_scoped_resources(module: Module) -> None:
    scopes = {
        s["scope"] for blocks in module.local("adapter_statements").values() for s in blocks
    } | {s["scope"] for s in module.local("platform_statements")}
    resources = squash(module.local("function_resources"))
    for scope in scopes:
        assert f"'{scope}':" in resources, f"scope {scope} has no resources"
    # "*" only for X-Ray, whose PutTraceSegments/PutTelemetryRecords take no resource ARN
    assert resources.count("'*'") == 1 and "'xray':['*']" in resources
    for function, statements in function_policies(module).items():
        for statement in statements:
            if "*" in statement["Resource"]:
                assert set(statement["Action"]) == TRACING_ACTIONS, (function, statement)


def test_s3_access_is_by_prefix_and_only_the_ingestor_reads_raw(module: Module) -> None:
    prefixes = module.local("s3_prefixes")
    known = {
        c.RAW_PREFIX,
        c.PROCESSED_PREFIX,
        c.REJECTED_PREFIX,
        c.MANIFESTS_PREFIX,
        c.ANALYZED_PREFIX,
        c.REPORTS_PREFIX,
        c.WORK_PREFIX,
        f"{c.WORK_PREFIX}analyze/",  # the grouped analysis's files (stages/grouped_analyze.py)
        LAKE_PREFIX,
        EXECUTIONS_PREFIX,
    }
    assert set(prefixes) == set(FUNCTIONS)
    for function, access in prefixes.items():
        assert set(access["read"]) | set(access["write"]) <= known, function
        assert c.RAW_PREFIX not in access["write"], "nothing writes over raw uploads"
    # the lake is analyze's copy of the processed rows (dataops/lake_write.py), written by the
    # analyzer or the grouped analysis's Prepare
    writers = {f for f, a in prefixes.items() if LAKE_PREFIX in a["write"]}
    assert writers == {"analyzer", "analyze_prepare"}
    # the grouped analysis's steps reach their own work/analyze/ files, never the chunked
    # ingest's under work/
    for function in (f for f in FUNCTIONS if f.startswith("analyze_")):
        assert c.WORK_PREFIX not in prefixes[function]["read"] + prefixes[function]["write"]
    assert prefixes["analyze_release"] == {"read": [], "write": []}
    # the ingestor, and the chunked ingest's steps (ranged reads of the upload)
    readers = {f for f, a in prefixes.items() if c.RAW_PREFIX in a["read"]}
    chunk_steps = {f for f in FUNCTIONS if f.startswith("chunk_")} - {"chunk_release"}
    assert readers == {"ingestor"} | chunk_steps
    # the chunked ingest's failure branch reads in the bucket only what Plan recorded of
    # the claim it took, and writes nothing there
    assert prefixes["chunk_release"] == {"read": [EXECUTIONS_PREFIX], "write": []}
    assert "s3" in module.local("read_only_adapters")["chunk_release"]
    # only Plan and the ingestor claim an upload (and write its manifest when it is unusable)
    assert {f for f in readers if "ledger" in module.local("function_adapters")[f]} == {
        "ingestor",
        "chunk_plan",
        "chunk_assemble",
    }


# --- every policy document under infra/ -----------------------------------------------------
def _statements(path: Path) -> list[tuple[str, dict[str, Any]]]:
    with path.open() as handle:
        parsed = hcl2.load(handle)
    out: list[tuple[str, dict[str, Any]]] = []
    for block in parsed.get("data", []):
        for name, document in block.get("aws_iam_policy_document", {}).items():
            for statement in document.get("statement", []):
                out.append((f"{path.relative_to(TERRAFORM).as_posix()}:{name}", statement))
    return out


ALL_STATEMENTS = [item for path in tf_files(TERRAFORM) for item in _statements(path)]


def test_no_allow_statement_under_infra_has_a_wildcard_action(module: Module) -> None:
    assert len(ALL_STATEMENTS) > 10
    for where, statement in ALL_STATEMENTS:
        if attr(statement, "effect", "Allow") != "Allow":
            continue  # a Deny with s3:* (TLS-only bucket policies) only takes rights away
        for action in attr(statement, "actions", []):
            assert action != "*" and not action.endswith(":*"), f"{where}: {action}"
            assert "not_actions" not in statement, where
    lambda_actions = [
        action
        for blocks in module.local("adapter_statements").values()
        for s in blocks
        for action in s["actions"]
    ] + [a for s in module.local("platform_statements") for a in s["actions"]]
    assert all("*" not in action for action in lambda_actions)


def test_the_application_module_grants_no_wildcard_action_at_all() -> None:
    for where, statement in ALL_STATEMENTS:
        if where.startswith("cicd/") or attr(statement, "effect", "Allow") != "Allow":
            continue
        for action in attr(statement, "actions", []):
            assert "*" not in action, f"{where}: {action}"


def test_the_key_rotates_and_encrypts_the_stores(module: Module) -> None:
    key = module.resource("aws_kms_key", "this")
    assert attr(key, "enable_key_rotation") is True
    for table in ("ledger", "analyses"):
        sse = attr(module.resource("aws_dynamodb_table", table), "server_side_encryption")
        assert attr(sse, "kms_key_arn") == "${aws_kms_key.this.arn}"
    assert (
        attr(module.resource("aws_sqs_queue", "dlq"), "kms_master_key_id")
        == "${aws_kms_key.this.arn}"
    )
    assert (
        attr(module.resource("aws_sns_topic", "alerts"), "kms_master_key_id")
        == "${aws_kms_key.this.arn}"
    )
