"""Analyses in DynamoDB: one summary item per dataset plus one item per flagged user/episode.

Table `pk` (S) + `sk` (S):
- summary: `pk=DATASET#<dataset_id>`, `sk=SUMMARY`, `day` + `created_at` for the GSI `by_day`;
- flagged: `sk=USER#<pseudonym>` or `sk=EPISODE#<nnnn>`, `user_key` + `created_at` for the
  GSI `by_user`.
Every item carries `expires_at` (TTL, epoch seconds) and stays far below DynamoDB's 400 KB
item limit whatever the file size: documents are trimmed to a budget (the full analysis JSON
lives in S3 under analyzed/).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import translate
from healthpipe.adapters.aws.item_budget import fit
from healthpipe.domain.documents import JsonObject
from healthpipe.errors import ConfigError, TransientError
from healthpipe.ports import AnalysisStore

IAM_ACTIONS: tuple[str, ...] = (
    "dynamodb:BatchWriteItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
)

SUMMARY_BUDGET = 48 * 1024
FLAGGED_BUDGET = 8 * 1024
BATCH = 25
BATCH_ATTEMPTS = 5
SUMMARY_SK = "SUMMARY"


def compact(doc: JsonObject) -> str:
    return json.dumps(doc, default=str, separators=(",", ":"))


def dataset_pk(dataset_id: str) -> str:
    return f"DATASET#{dataset_id}"


def flagged_sk(item: JsonObject) -> str:
    """USER#<pseudonym> for a flagged user, EPISODE#<nnnn> for an episode."""
    if item.get("kind") == "user":
        return f"USER#{item['user_key']}"
    kind, _, suffix = str(item["item_key"]).partition("#")
    return f"{kind.upper()}#{suffix}"


class DynamoAnalysisStore(AnalysisStore):
    def __init__(
        self,
        table: str,
        client: Any,
        *,
        ttl_days: int = 400,
        sleep: Any = time.sleep,
    ) -> None:
        self.table = table
        self.client = client
        self.ttl_days = ttl_days
        self.sleep = sleep

    def _table(self) -> str:
        if not self.table:
            raise ConfigError("analyses_table is not set (HEALTHPIPE_ANALYSES_TABLE)")
        return self.table

    # -- writing ---------------------------------------------------------------------------
    def _save(self, summary: JsonObject, flagged: list[JsonObject]) -> None:
        created = summary.get("created_epoch")
        epoch = float(created) if isinstance(created, int | float) and created else time.time()
        stamp = datetime.fromtimestamp(epoch, UTC)
        created_at = stamp.isoformat(timespec="microseconds")
        expires = str(int(epoch + self.ttl_days * 86400))
        pk = dataset_pk(str(summary["dataset_id"]))
        doc = fit(summary, SUMMARY_BUDGET)
        items = [
            {
                "pk": {"S": pk},
                "sk": {"S": SUMMARY_SK},
                "day": {"S": stamp.strftime("%Y-%m-%d")},
                "created_at": {"S": created_at},
                "doc": {"S": compact(doc)},
                "expires_at": {"N": expires},
            }
        ]
        for entry in flagged:
            items.append(
                {
                    "pk": {"S": pk},
                    "sk": {"S": flagged_sk(entry)},
                    "user_key": {"S": str(entry["user_key"])},
                    "kind": {"S": str(entry["kind"])},
                    "created_at": {"S": created_at},
                    "doc": {"S": compact(fit(entry, FLAGGED_BUDGET))},
                    "expires_at": {"N": expires},
                }
            )
        keep = {item["sk"]["S"] for item in items}
        stale = [sk for sk in self._sort_keys(pk) if sk not in keep]
        requests = [{"PutRequest": {"Item": item}} for item in items] + [
            {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for sk in stale
        ]
        for start in range(0, len(requests), BATCH):
            self._write_batch(requests[start : start + BATCH])

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self._table(): requests}
        for attempt in range(BATCH_ATTEMPTS):
            try:
                response = self.client.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "analysis store batch_write_item") from exc
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            self.sleep(0.05 * 2**attempt)
        raise TransientError("analysis store: items stayed unprocessed after retries")

    def _sort_keys(self, pk: str) -> list[str]:
        return [
            item["sk"]["S"]
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ProjectionExpression="sk",
            )
        ]

    # -- reading ---------------------------------------------------------------------------
    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        try:
            pages = self.client.get_paginator("query").paginate(TableName=self._table(), **kwargs)
            for page in pages:
                items.extend(page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "analysis store query") from exc
        return items

    def _get(self, dataset_id: str) -> JsonObject | None:
        try:
            response = self.client.get_item(
                TableName=self._table(),
                Key={"pk": {"S": dataset_pk(dataset_id)}, "sk": {"S": SUMMARY_SK}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "analysis store get_item") from exc
        item = response.get("Item")
        return json.loads(item["doc"]["S"]) if item else None

    def _recent(self, limit: int, since_epoch: float | None) -> list[JsonObject]:
        """Newest first, one GSI query per day back to `since_epoch` (or the TTL horizon)."""
        now = datetime.now(UTC)
        oldest = (
            datetime.fromtimestamp(since_epoch, UTC)
            if since_epoch is not None
            else now - timedelta(days=self.ttl_days)
        )
        since_at = oldest.isoformat(timespec="microseconds")
        found: list[tuple[str, JsonObject]] = []
        day = now.date()
        while day >= oldest.date() and len(found) < limit:
            items = self._query(
                IndexName="by_day",
                KeyConditionExpression="#day = :day AND created_at >= :since",
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues={
                    ":day": {"S": day.isoformat()},
                    ":since": {"S": since_at},
                },
                ScanIndexForward=False,
            )
            found.extend((item["created_at"]["S"], json.loads(item["doc"]["S"])) for item in items)
            day -= timedelta(days=1)
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [doc for _, doc in found[:limit]]

    def _flagged_for_user(self, user_key: str) -> list[JsonObject]:
        items = self._query(
            IndexName="by_user",
            KeyConditionExpression="user_key = :u",
            ExpressionAttributeValues={":u": {"S": user_key}},
            ScanIndexForward=False,
        )
        return [json.loads(item["doc"]["S"]) for item in items]
