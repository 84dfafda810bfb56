"""Each function's IAM policy, resolved from the Terraform (infra/terraform/iam.tf).

`function_policies(module, deployment)` walks the same locals Terraform assembles the policy
documents from: `function_adapters` → `adapter_statements` (without the `access = "write"`
statements of a function's `read_only_adapters`), then `platform_statements`,
`event_source_statements[f]`, `execution_record_statements[f]` and `tracing_statements`
(`function_grants`), the first statement of each sid kept (`function_statements`: adapters
needing the same permission share its sid); each statement's `scope` (and each
condition's) is looked up in `function_resources[f]`. References (`${aws_kms_key.this.arn}`,
`${local.data_bucket_arn}`, ...) are replaced by the deployment's values; anything the
resolver does not know raises `Unresolved`, so a statement can never be silently dropped.

`docs/deploy.md` carries the table `render_table()` prints (run this file to print it);
tests/infra/test_infra_iam_doc.py holds the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from infra_terraform import Module, attr, squash

REF = re.compile(r"\$\{([^${}]+)\}")
FOR_PREFIXES = re.compile(
    r"^\$\{\[for prefix in (?P<source>.+?) : \"(?P<template>.+)\"\]\}$", re.DOTALL
)


class Unresolved(AssertionError):
    """An expression of the Terraform the resolver cannot evaluate."""


@dataclass(frozen=True)
class Deployment:
    """The values Terraform would know after apply (stand-ins for tests and the docs)."""

    partition: str = "aws"
    region: str = "us-east-1"
    account: str = "123456789012"
    prefix: str = "healthpipe"
    bucket: str = "healthpipe-data-123456789012-us-east-1"
    sender_email: str = "reports@example.com"
    bedrock_model_id: str = ""
    bedrock_region: str = ""
    tracing_enabled: bool = True
    overrides: dict[str, str] = field(default_factory=dict)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{resource}"

    def references(self, function: str) -> dict[str, str]:
        p = self.prefix
        values = {
            "local.data_bucket_arn": f"arn:{self.partition}:s3:::{self.bucket}",
            "aws_kms_key.this.arn": self.arn("kms", "key/00000000-0000-0000-0000-000000000000"),
            "aws_dynamodb_table.ledger.arn": self.arn("dynamodb", f"table/{p}-ledger"),
            "aws_dynamodb_table.analyses.arn": self.arn("dynamodb", f"table/{p}-analyses"),
            "aws_cloudwatch_event_bus.this.arn": self.arn("events", f"event-bus/{p}-bus"),
            "aws_cloudwatch_log_group.function[f].arn": self.arn(
                "logs", f"log-group:/aws/lambda/{p}-{function}"
            ),
            "aws_sqs_queue.dlq[f].arn": self.arn("sqs", f"{p}-{function}-dlq"),
            "aws_sqs_queue.analyze.arn": self.arn("sqs", f"{p}-analyze-queue"),
            "aws_sesv2_email_identity.this[var.sender_email].arn": self.arn(
                "ses", f"identity/{self.sender_email}"
            ),
            "aws_sesv2_configuration_set.this.arn": self.arn(
                "ses", f"configuration-set/{p}-reports"
            ),
        }
        values.update(self.overrides)
        return values


def substitute(template: str, references: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in references:
            raise Unresolved(f"unknown reference ${{{name}}} in {template!r}")
        return references[name]

    return REF.sub(one, template)


# --- Bedrock (the locals of iam.tf, mirrored; test_infra_iam holds the expressions) --------
def bedrock_geo(region: str) -> str:
    for start, geo in (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac")):
        if region.startswith(start):
            return geo
    return "ca" if region.startswith("ca-") else ""


def bedrock_model_id(module: Module, deployment: Deployment) -> str:
    region = deployment.bedrock_region or deployment.region
    return deployment.bedrock_model_id or f"{bedrock_geo(region)}.amazon.nova-lite-v1:0"


def bedrock_resources(module: Module, deployment: Deployment) -> list[str]:
    regions: dict[str, list[str]] = module.local("bedrock_profile_regions")
    region = deployment.bedrock_region or deployment.region
    model_id = bedrock_model_id(module, deployment)
    geo, _, model = model_id.partition(".")
    part = deployment.partition
    if geo in regions:
        return [
            f"arn:{part}:bedrock:{region}:{deployment.account}:inference-profile/{model_id}",
            *(f"arn:{part}:bedrock:{glob}::foundation-model/{model}" for glob in regions[geo]),
        ]
    return [f"arn:{part}:bedrock:{region}::foundation-model/{model_id}"]


# --- resources of a scope ------------------------------------------------------------------
def _prefixes(source: str, module: Module, function: str) -> list[str]:
    prefixes = module.local("s3_prefixes")[function]
    access = re.fullmatch(r"local\.s3_prefixes\[f\]\.(read|write)", source)
    if access:
        return list(prefixes[access.group(1)])
    both = (
        "distinct(concat(local.s3_prefixes[f].read, local.s3_prefixes[f].write))",
        "distinct(concat(local.s3_prefixes[f].read,local.s3_prefixes[f].write))",
    )
    if source in both:
        return list(dict.fromkeys([*prefixes["read"], *prefixes["write"]]))
    raise Unresolved(f"unknown prefix source {source!r}")


def scope_resources(module: Module, deployment: Deployment, function: str, scope: str) -> list[str]:
    expression = function_resources_expression(module)
    if scope not in expression:
        raise Unresolved(f"scope {scope!r} has no resources in function_resources")
    value = expression[scope]
    references = deployment.references(function)
    if isinstance(value, list):
        return [substitute(str(item), references) for item in value]
    text = str(value)
    if text == "${local.ses_resources}":
        return [substitute(str(item), references) for item in module.local("ses_resources")]
    if text == "${local.bedrock_resources}":
        return bedrock_resources(module, deployment)
    loop = FOR_PREFIXES.match(text)
    if loop:
        template = loop.group("template").replace("${prefix}", "\0")
        return [
            substitute(template, references).replace("\0", prefix)
            for prefix in _prefixes(loop.group("source"), module, function)
        ]
    raise Unresolved(f"cannot resolve the resources of scope {scope!r}: {text}")


def function_resources_expression(module: Module) -> dict[str, Any]:
    """`function_resources`' per-function object (python-hcl2 keeps the for-expression as
    text: the object body is parsed back here)."""
    text = str(module.local("function_resources"))
    head = "${{for f in local.functions : f => "
    if not text.startswith(head) or not text.endswith("}}}"):
        raise Unresolved(f"function_resources changed shape: {text[:80]}")
    body = text[len(head) : -2]
    import ast

    try:
        parsed = ast.literal_eval(body)
    except (ValueError, SyntaxError) as exc:
        raise Unresolved(f"function_resources body is not a literal: {exc}") from exc
    if not isinstance(parsed, dict):
        raise Unresolved("function_resources body is not an object")
    return parsed


# --- statements ---------------------------------------------------------------------------
def raw_statements(module: Module, function: str, deployment: Deployment) -> list[dict[str, Any]]:
    adapters = module.local("adapter_statements")
    read_only = set(module.local("read_only_adapters")[function])
    out: list[dict[str, Any]] = []
    for adapter in module.local("function_adapters")[function]:
        for statement in adapters[adapter]:
            if adapter in read_only and statement.get("access", "read") == "write":
                continue
            out.append(statement)
    out.extend(module.local("platform_statements"))
    out.extend(module.local("event_source_statements")[function])
    out.extend(module.local("execution_record_statements")[function])
    if deployment.tracing_enabled:
        tracing = module.local("tracing_statements")
        if not squash(tracing).startswith("${var.tracing_enabled?["):
            raise Unresolved(f"tracing_statements changed shape: {tracing}")
        out.extend(_tracing_statements(str(tracing)))
    first = {}
    for statement in out:  # function_statements: one statement per sid, the first
        first.setdefault(statement["sid"], statement)
    return list(first.values())


def _tracing_statements(text: str) -> list[dict[str, Any]]:
    import ast

    body = text[text.index("?") + 1 : text.rindex(":")].strip()
    parsed = ast.literal_eval(body)
    if not isinstance(parsed, list):
        raise Unresolved("tracing_statements is not a list")
    return parsed


def function_policies(
    module: Module, deployment: Deployment | None = None
) -> dict[str, list[dict[str, Any]]]:
    """function → IAM policy statements (the JSON shape: Sid, Effect, Action, Resource,
    Condition)."""
    deployment = deployment or Deployment()
    policies: dict[str, list[dict[str, Any]]] = {}
    for function in module.local("function_adapters"):
        statements = []
        for raw in raw_statements(module, function, deployment):
            statement: dict[str, Any] = {
                "Sid": raw["sid"],
                "Effect": "Allow",
                "Action": list(raw["actions"]),
                "Resource": scope_resources(module, deployment, function, raw["scope"]),
            }
            conditions: dict[str, dict[str, list[str]]] = {}
            for condition in raw.get("conditions", []):
                values = scope_resources(module, deployment, function, condition["scope"])
                conditions.setdefault(condition["test"], {})[condition["variable"]] = values
            if conditions:
                statement["Condition"] = conditions
            statements.append(statement)
        policies[function] = statements
    return policies


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


# --- the docs table -------------------------------------------------------------------------
DOC_DEPLOYMENT = Deployment(
    account="<account>",
    region="<region>",
    bucket="<data-bucket>",
    sender_email="<sender_email>",
    bedrock_model_id="us.amazon.nova-lite-v1:0",
    bedrock_region="<region>",
    overrides={"aws_kms_key.this.arn": "arn:aws:kms:<region>:<account>:key/<key-id>"},
)


def _short(resource: str) -> str:
    return resource.replace("arn:aws:", "").replace(":<region>:<account>:", ":…:")


def render_table(module: Module) -> str:
    """The Markdown table of docs/deploy.md: one row per statement of each function."""
    policies = function_policies(module, DOC_DEPLOYMENT)
    rows = ["| Function | Sid | Actions | Resources | Condition |", "|---|---|---|---|---|"]
    for function, statements in policies.items():
        for statement in statements:
            condition = "; ".join(
                f"{test} {variable} {', '.join(values)}"
                for test, variables in statement.get("Condition", {}).items()
                for variable, values in variables.items()
            )
            rows.append(
                f"| {function} | {statement['Sid']} | "
                f"{', '.join(f'`{a}`' for a in statement['Action'])} | "
                f"{'<br>'.join(f'`{_short(r)}`' for r in statement['Resource'])} | "
                f"{f'`{condition}`' if condition else ''} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover - prints the docs table
    from infra_terraform import load_module

    print(render_table(load_module()))
    _ = attr
