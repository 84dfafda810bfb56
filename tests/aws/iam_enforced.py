"""Each function's IAM policy, resolved from infra/terraform, enforced by the moto server.

`function_statements(stack)` takes each function's statements from the same resolver as
tests/infra and the permissions table of docs/deploy.md (tests/infra/iam_policy.py: it walks
iam.tf's locals `function_adapters` → `adapter_statements` less the writes of
`read_only_adapters`, `platform_statements`, `event_source_statements`, `tracing_statements`,
and raises `Unresolved` on any expression it cannot evaluate), with the test stack's names.
Statements for services the code never calls on moto with the function's credentials are
set aside (`NOT_ON_MOTO`: Bedrock is stubbed; Lambda itself writes the logs, reads the
analyzer's queue and sends to the DLQ; the X-Ray daemon sends traces; moto's S3 does not
call KMS); every other statement goes into the function's moto policy.

moto enforces IAM once `INITIAL_NO_AUTH_ACTION_COUNT` is 0 (`/moto-api/reset-auth`). Two of
its gaps are closed here, in the test process that runs the server:
- it authorizes DynamoDB, EventBridge and SES calls against the resource `*`, which no
  scoped statement matches: `moto_resources()` gives those handlers the ARN of the table
  (index), bus or sender identity the request names, as AWS does; it authorizes S3's
  DeleteObjects against the bucket, which `moto_resources()` makes a check of each object,
  as AWS does (`s3:DeleteObjectVersion` for a version);
- a statement with a `Condition` is an explicit deny when moto has no context value for it
  (it evaluates none for S3): conditions are left out of the moto policy and kept on the
  `Statement`, for the tests to check separately.
"""

from __future__ import annotations

import functools
import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import moto_env
from iam_policy import Deployment, Unresolved, function_policies
from infra_terraform import MODULE, Module, load_module

__all__ = ["NOT_ON_MOTO", "Statement", "Unresolved", "function_statements"]

NOT_ON_MOTO = {
    "bedrock": "moto has no Bedrock Runtime Converse (the analyst is stubbed)",
    "logs": "Lambda writes the function's logs, not the code",
    "sqs": "Lambda reads the analyzer's queue and sends failed invocations to the DLQ",
    "xray": "the X-Ray daemon sends traces, not the code",
    "kms": "moto's S3 does not call KMS with the caller's credentials",
}


@dataclass
class Statement:
    function: str
    sid: str
    actions: list[str]
    resources: list[str]
    conditions: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The statement as moto gets it (without its conditions: see the module doc)."""
        return {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": self.resources,
        }


def deployment(stack: moto_env.Stack) -> Deployment:
    """The Terraform's values for the moto stack (its names, region, account, sender)."""
    return Deployment(
        region=moto_env.REGION,
        account=moto_env.ACCOUNT,
        prefix=stack.prefix,
        bucket=stack.bucket,
        sender_email=moto_env.SENDER,
    )


def terraform() -> Module:
    """infra/terraform, parsed once per process while its files are unchanged (every test
    that enforces IAM resolves the statements: parsing the HCL again each time cost more
    than the rest of their set-up)."""
    return _parsed(tuple((p.name, p.stat().st_mtime_ns) for p in sorted(MODULE.glob("*.tf"))))


@functools.cache
def _parsed(files: tuple[tuple[str, int], ...]) -> Module:
    return load_module()


def function_statements(
    stack: moto_env.Stack, module: Module | None = None
) -> dict[str, tuple[list[Statement], dict[str, str]]]:
    """function -> (statements for moto, {sid: service} of those set aside)."""
    policies = function_policies(module or terraform(), deployment(stack))
    out: dict[str, tuple[list[Statement], dict[str, str]]] = {}
    for function, documents in policies.items():
        statements: list[Statement] = []
        skipped: dict[str, str] = {}
        for doc in documents:
            services = {action.partition(":")[0] for action in doc["Action"]}
            if services <= set(NOT_ON_MOTO):
                skipped[doc["Sid"]] = ",".join(sorted(services))
                continue
            if services & set(NOT_ON_MOTO):
                raise Unresolved(f"{function}/{doc['Sid']} mixes services: {sorted(services)}")
            statements.append(
                Statement(
                    function,
                    doc["Sid"],
                    list(doc["Action"]),
                    list(doc["Resource"]),
                    dict(doc.get("Condition", {})),
                )
            )
        out[function] = (statements, skipped)
    return out


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
    # SES's query parameters are parsed into `querystring` before the check (its body is
    # consumed by then)
    query = getattr(handler, "querystring", None) or parse_qs(_body(handler).decode())
    source = (query.get("Source") or [""])[0]
    if not source:
        return "*"
    return f"arn:aws:ses:{handler.region}:{handler.current_account}:identity/{source}"


def _authorize_s3(original: Any) -> Any:
    """moto authorizes a DeleteObjects request as `s3:DeleteObject` on the bucket's ARN;
    AWS authorizes each object it names, on the object's ARN: `s3:DeleteObject`, or
    `s3:DeleteObjectVersion` for one with a version id. Denied: the request fails."""

    def authorize(
        handler: Any, bucket_name: str | None = None, key_name: str | None = None
    ) -> None:
        if key_name is not None or handler.data.get("Action") != "DeleteObject":
            return original(handler, bucket_name=bucket_name, key_name=key_name)
        if not handler.is_delete_keys():
            return original(handler, bucket_name=bucket_name, key_name=key_name)
        import xmltodict

        objects = xmltodict.parse(handler.body)["Delete"].get("Object", [])
        for entry in objects if isinstance(objects, list) else [objects]:
            version = entry.get("VersionId")
            handler.data["Action"] = "DeleteObjectVersion" if version else "DeleteObject"
            try:
                original(handler, bucket_name=bucket_name, key_name=entry["Key"])
            finally:
                handler.data["Action"] = "DeleteObject"
        return None

    return authorize


@contextmanager
def moto_resources() -> Iterator[None]:
    """Let moto authorize DynamoDB, EventBridge and SES calls against the named resource,
    and S3's DeleteObjects per object (`_authorize_s3`)."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.s3.responses import S3Response
    from moto.ses.responses import EmailResponse

    patched = {DynamoHandler: _dynamodb_resource, EventsHandler: _events_resource}
    patched[EmailResponse] = _ses_resource
    for cls, resource in patched.items():
        cls._determine_resource = resource  # type: ignore[attr-defined]
    authorize_s3 = S3Response._authenticate_and_authorize_s3_action
    S3Response._authenticate_and_authorize_s3_action = _authorize_s3(authorize_s3)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for cls in patched:
            del cls._determine_resource  # type: ignore[attr-defined]
        S3Response._authenticate_and_authorize_s3_action = authorize_s3  # type: ignore[method-assign]
