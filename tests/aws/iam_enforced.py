"""Each function's IAM policy, resolved from infra/terraform, enforced by the moto server.

`function_policies()` reads `local.function_statements`' ingredients from iam.tf with
python-hcl2 (the adapters' and platform statements, `function_adapters`, and each scope's
resource expression in `function_resources`) and resolves every resource expression to the
test stack's names: `${…}` references through `REFERENCES`, `[for p in local.s3_prefixes[f]
.read : "…${p}*"]` comprehensions, `local.*` indirections. An expression it cannot resolve
raises `Unresolved` (the tests fail), except for the scopes in `NOT_ON_MOTO`, whose calls
the tests cannot make on moto (Bedrock, Lambda's own logs and DLQ, X-Ray, KMS).

moto enforces IAM once `INITIAL_NO_AUTH_ACTION_COUNT` is 0 (`/moto-api/reset-auth`). Two of
its gaps are closed here, in the test process that runs the server:
- it authorizes DynamoDB, EventBridge and SES calls against the resource `*`, which no
  scoped statement matches: `teach_moto_resources()` gives those handlers the ARN of the
  table (index), bus or sender identity the request names, as AWS does;
- a statement with a `Condition` is an explicit deny when moto has no context value for it
  (it evaluates none for S3): conditions are left out of the moto policy and returned
  alongside, for the tests to check separately.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))

import moto_env
from infra_terraform import Module, load_module

NOT_ON_MOTO = {
    "bedrock_model": "moto has no Bedrock Runtime Converse (the analyst is stubbed)",
    "own_log_group": "Lambda writes the function's logs, not the code",
    "own_dlq": "Lambda sends failed invocations to the DLQ, not the code",
    "own_queue": "the event-source mapping reads the analyzer's queue, not the code",
    "xray": "the X-Ray daemon sends traces, not the code",
    "kms_key": "moto's S3 does not call KMS with the caller's credentials",
}


class Unresolved(Exception):
    """A Terraform expression the resolver cannot turn into test values."""


@dataclass
class Statement:
    function: str
    sid: str
    actions: list[str]
    resources: list[str]
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": self.resources,
        }


def references(stack: moto_env.Stack, function: str) -> dict[str, str]:
    r, a = moto_env.REGION, moto_env.ACCOUNT
    return {
        "local.partition": "aws",
        "local.account_id": a,
        "local.region": r,
        "local.data_bucket_arn": f"arn:aws:s3:::{stack.bucket}",
        "aws_s3_bucket.data.arn": f"arn:aws:s3:::{stack.bucket}",
        "aws_kms_key.this.arn": f"arn:aws:kms:{r}:{a}:key/test-key",
        "aws_dynamodb_table.ledger.arn": f"arn:aws:dynamodb:{r}:{a}:table/{stack.ledger_table}",
        "aws_dynamodb_table.analyses.arn": (
            f"arn:aws:dynamodb:{r}:{a}:table/{stack.analyses_table}"
        ),
        "aws_cloudwatch_event_bus.this.arn": f"arn:aws:events:{r}:{a}:event-bus/{stack.bus}",
        "aws_sesv2_email_identity.this[var.sender_email].arn": (
            f"arn:aws:ses:{r}:{a}:identity/{moto_env.SENDER}"
        ),
        "aws_sesv2_configuration_set.this.arn": (
            f"arn:aws:ses:{r}:{a}:configuration-set/{stack.prefix}"
        ),
        "aws_cloudwatch_log_group.function[f].arn": (
            f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{stack.prefix}-{function}"
        ),
        "aws_sqs_queue.dlq[f].arn": f"arn:aws:sqs:{r}:{a}:{stack.prefix}-{function}-dlq",
        "aws_sqs_queue.analyze.arn": f"arn:aws:sqs:{r}:{a}:{stack.prefix}-analyze",
    }


WHOLE = re.compile(r"^\$\{(.*)\}$", re.S)
FOR_LIST = re.compile(r'^\[for (\w+) in (.+?) : "(.*)"\]$', re.S)
INTERPOLATION = re.compile(r"\$\{([^{}]+)\}")


class Resolver:
    def __init__(self, module: Module, stack: moto_env.Stack, function: str) -> None:
        self.module = module
        self.function = function
        self.refs = references(stack, function)

    def values(self, expression: Any) -> list[str]:
        """A list-valued expression (a scope's resources) as strings."""
        if isinstance(expression, list):
            return [v for item in expression for v in self.values(item)]
        if not isinstance(expression, str):
            raise Unresolved(repr(expression))
        whole = WHOLE.match(expression.strip())
        inner = whole.group(1).strip() if whole else None
        if inner is not None and re.fullmatch(r"local\.\w+", inner):
            return self.values(self.module.local(inner.removeprefix("local.")))
        if inner is not None and (loop := FOR_LIST.match(inner)):
            name, source, template = loop.groups()
            return [self.template(template, {name: item}) for item in self.sequence(source.strip())]
        if inner is not None and not INTERPOLATION.search(inner) and inner in self.refs:
            return [self.refs[inner]]
        return [self.template(expression, {})]

    def sequence(self, source: str) -> list[str]:
        """`local.s3_prefixes[f].read`, and `distinct(concat(…, …))` of such."""
        prefixes = self.module.local("s3_prefixes")[self.function]
        plain = re.fullmatch(r"local\.s3_prefixes\[f\]\.(\w+)", source)
        if plain:
            return list(prefixes[plain.group(1)])
        union = re.fullmatch(
            r"distinct\(concat\(local\.s3_prefixes\[f\]\.(\w+),\s*local\.s3_prefixes\[f\]\.(\w+)\)\)",
            source,
        )
        if union:
            return list(dict.fromkeys([*prefixes[union.group(1)], *prefixes[union.group(2)]]))
        raise Unresolved(source)

    def template(self, text: str, bound: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            ref = match.group(1).strip()
            if ref in bound:
                return bound[ref]
            if ref in self.refs:
                return self.refs[ref]
            raise Unresolved(ref)

        return INTERPOLATION.sub(one, text)


def function_statements(stack: moto_env.Stack, module: Module | None = None) -> dict[str, Any]:
    """function -> (statements resolved for moto, {sid: scope} of those left out)."""
    module = module or load_module()
    adapter_statements = module.local("adapter_statements")
    platform = module.local("platform_statements")
    scopes = module.local("function_resources")
    inner = WHOLE.match(scopes.strip()) if isinstance(scopes, str) else None
    if inner is None:
        raise Unresolved("function_resources is not a for expression")
    body = re.fullmatch(r"\{for f in local\.functions : f => (\{.*\})\}", inner.group(1), re.S)
    if body is None:
        raise Unresolved("function_resources: " + inner.group(1)[:80])
    per_scope: dict[str, Any] = _python_literal(body.group(1))
    out: dict[str, Any] = {}
    for function, adapters in module.local("function_adapters").items():
        resolver = Resolver(module, stack, function)
        blocks = [s for a in adapters for s in adapter_statements[a]] + list(platform)
        statements: list[Statement] = []
        skipped: dict[str, str] = {}
        for block in blocks:
            scope = block["scope"]
            if scope not in per_scope:
                raise Unresolved(f"{function}/{block['sid']}: scope {scope} has no resources")
            try:
                resources = resolver.values(per_scope[scope])
                conditions = [
                    {**c, "values": resolver.values(per_scope[c["scope"]])}
                    for c in block.get("conditions", [])
                ]
            except Unresolved:
                if scope in NOT_ON_MOTO:
                    skipped[block["sid"]] = scope
                    continue
                raise
            statements.append(
                Statement(function, block["sid"], list(block["actions"]), resources, conditions)
            )
        out[function] = (statements, skipped)
    return out


def _python_literal(text: str) -> Any:
    """python-hcl2 writes a nested object as a Python repr: read it as one."""
    import ast

    return ast.literal_eval(text)


# --- moto: enforcement, principals, resources of non-S3 calls ------------------------------
def set_enforcement(endpoint: str, on: bool) -> None:
    data = b"0" if on else b"inf"
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=data,
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


@dataclass
class Principal:
    name: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


def create_principal(iam: Any, name: str, statements: list[dict[str, Any]]) -> Principal:
    """An IAM user (moto signs requests of users; a role would need STS) with one policy."""
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName=name,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Principal(name, key["AccessKeyId"], key["SecretAccessKey"])


ADMIN = [{"Sid": "TestAdmin", "Effect": "Allow", "Action": "*", "Resource": "*"}]


def _body(handler: Any) -> bytes:
    raw = getattr(handler, "raw_body", b"") or b""
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _dynamodb_resource(handler: Any) -> str:
    try:
        body = json.loads(_body(handler) or b"{}")
    except ValueError:
        return "*"
    table = body.get("TableName") or next(iter(body.get("RequestItems") or {}), None)
    if not table:
        return "*"
    arn = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{table}"
    return f"{arn}/index/{body['IndexName']}" if body.get("IndexName") else arn


def _events_resource(handler: Any) -> str:
    try:
        body = json.loads(_body(handler) or b"{}")
    except ValueError:
        return "*"
    buses = {e.get("EventBusName") or "default" for e in body.get("Entries") or []}
    if len(buses) != 1:
        return "*"
    bus = buses.pop()
    if bus.startswith("arn:"):
        return str(bus)
    return f"arn:aws:events:{handler.region}:{handler.current_account}:event-bus/{bus}"


def _ses_resource(handler: Any) -> str:
    source = parse_qs(_body(handler).decode()).get("Source", [""])[0]
    if not source:
        return "*"
    return f"arn:aws:ses:{handler.region}:{handler.current_account}:identity/{source}"


@contextmanager
def moto_resources() -> Iterator[None]:
    """Let moto authorize DynamoDB, EventBridge and SES calls against the named resource."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.ses.responses import EmailResponse

    patched = {DynamoHandler: _dynamodb_resource, EventsHandler: _events_resource}
    patched[EmailResponse] = _ses_resource
    for cls, resource in patched.items():
        cls._determine_resource = resource  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for cls in patched:
            del cls._determine_resource  # type: ignore[attr-defined]
