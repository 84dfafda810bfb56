"""The idempotency ledger in DynamoDB: conditional writes, leases, TTL.

Item: `pk` (the ledger key), `status` (in_progress | completed), `owner`,
`lease_expires_at` and `updated_at` (epoch seconds; the claim's `now`), `attempts`, `result`
(JSON), `expires_at` (TTL: the lease end plus the retention).
A claim is a put conditioned on `attribute_not_exists(pk)`; a takeover is an update
conditioned on the record still being the same expired, in-progress claim.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import error_code, translate
from healthpipe.errors import ConfigError, PermanentError
from healthpipe.ports import Ledger, LedgerRecord

IAM_ACTIONS: tuple[str, ...] = (
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    # the table is encrypted with the deployment's key (a function that also uses S3 holds
    # these through it; the chunked ingest's Release uses the ledger alone)
    "kms:Decrypt",
    "kms:GenerateDataKey",
)

CONDITION_FAILED = "ConditionalCheckFailedException"
DEFAULT_RETENTION_DAYS = 90


class DynamoLedger(Ledger):
    def __init__(
        self,
        table: str,
        client: Any,
        *,
        lease_seconds: float = 900.0,
        owner: str | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        super().__init__(lease_seconds, owner)
        self.table = table
        self.client = client
        self.retention_seconds = retention_days * 86400

    def _table(self) -> str:
        if not self.table:
            raise ConfigError("ledger_table is not set (HEALTHPIPE_LEDGER_TABLE)")
        return self.table

    def _expires_at(self, lease_expires_at: float) -> str:
        return str(int(lease_expires_at + self.retention_seconds))

    def _conditional(self, call: str, **kwargs: Any) -> bool:
        """Run a conditional write: True if it applied, False if its condition failed."""
        try:
            getattr(self.client, call)(TableName=self._table(), **kwargs)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise translate(exc, f"ledger {call}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"ledger {call}") from exc
        return True

    def _insert_if_absent(self, record: LedgerRecord) -> bool:
        item = {
            "pk": {"S": record.key},
            "status": {"S": record.status},
            "owner": {"S": record.owner},
            "lease_expires_at": {"N": repr(record.lease_expires_at)},
            "attempts": {"N": str(record.attempts)},
            "result": {"S": json.dumps(record.result, default=str)},
            "updated_at": {"N": repr(record.updated_at)},
            "expires_at": {"N": self._expires_at(record.lease_expires_at)},
        }
        return self._conditional(
            "put_item", Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    def _replace_if_owner(self, record: LedgerRecord, expected_owner: str) -> bool:
        """The write itself also checks that the stored lease has expired at the claim's
        `now` (`record.updated_at`), the time `Ledger.claim` decided with."""
        return self._conditional(
            "update_item",
            Key={"pk": {"S": record.key}},
            UpdateExpression=(
                "SET #owner = :owner, lease_expires_at = :lease, attempts = :attempts, "
                "updated_at = :now, expires_at = :expires"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND #owner = :expected AND #status = :in_progress "
                "AND lease_expires_at <= :now"
            ),
            ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
            ExpressionAttributeValues={
                ":owner": {"S": record.owner},
                ":lease": {"N": repr(record.lease_expires_at)},
                ":attempts": {"N": str(record.attempts)},
                ":now": {"N": repr(record.updated_at)},
                ":expires": {"N": self._expires_at(record.lease_expires_at)},
                ":expected": {"S": expected_owner},
                ":in_progress": {"S": "in_progress"},
            },
        )

    def _get(self, key: str) -> LedgerRecord | None:
        try:
            response = self.client.get_item(
                TableName=self._table(), Key={"pk": {"S": key}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "ledger get_item") from exc
        item = response.get("Item")
        if not item:
            return None
        return LedgerRecord(
            key=item["pk"]["S"],
            status=item["status"]["S"],
            owner=item["owner"]["S"],
            lease_expires_at=float(item["lease_expires_at"]["N"]),
            result=json.loads(item.get("result", {}).get("S") or "{}"),
            attempts=int(item.get("attempts", {}).get("N") or 1),
            updated_at=float(item.get("updated_at", {}).get("N") or 0.0),
        )

    def _complete(self, key: str, owner: str, result: dict[str, Any]) -> None:
        applied = self._conditional(
            "update_item",
            Key={"pk": {"S": key}},
            UpdateExpression="SET #status = :completed, #result = :result, updated_at = :now",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#status": "status", "#result": "result", "#owner": "owner"},
            ExpressionAttributeValues={
                ":completed": {"S": "completed"},
                ":result": {"S": json.dumps(result, default=str)},
                ":now": {"N": repr(time.time())},
                ":owner": {"S": owner},
            },
        )
        if not applied:
            raise PermanentError(f"lost the claim on {key} before completing it")

    def _delete_if_owner(self, key: str, owner: str) -> None:
        self._conditional(
            "delete_item",
            Key={"pk": {"S": key}},
            ConditionExpression="#owner = :owner AND #status = :in_progress",
            ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":in_progress": {"S": "in_progress"},
            },
        )
