"""Analyses in DynamoDB: one summary item per dataset plus one item per flagged user/episode;
and, in the same table, the participants' per-day histograms (`DynamoParticipantHistoryStore`).

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import translate
from healthpipe.adapters.aws.item_budget import fit, size_of
from healthpipe.domain.documents import JsonObject
from healthpipe.errors import ConfigError, PermanentError, TransientError
from healthpipe.ports import AnalysisStore, ParticipantHistoryStore

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


class _AnalysesTable:
    """The analyses table's client, its batch writes (retrying unprocessed items) and
    paginated queries; shared by the analysis and the participant-history stores."""

    table: str
    client: Any
    sleep: Any

    def _table(self) -> str:
        if not self.table:
            raise ConfigError("analyses_table is not set (HEALTHPIPE_ANALYSES_TABLE)")
        return self.table

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

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        try:
            pages = self.client.get_paginator("query").paginate(TableName=self._table(), **kwargs)
            for page in pages:
                items.extend(page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "analysis store query") from exc
        return items


class DynamoAnalysisStore(_AnalysesTable, AnalysisStore):
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


# --------------------------------------------------------------------------- history
HISTOGRAM_BUDGET = 64 * 1024
QUERY_THREADS = 8
DAY_PREFIX = "DAY#"


def history_pk(pseudonym: str) -> str:
    return f"HISTORY#{pseudonym}"


def day_sk(day: str, dataset_id: str) -> str:
    return f"{DAY_PREFIX}{day}#{dataset_id}"


class DynamoParticipantHistoryStore(_AnalysesTable, ParticipantHistoryStore):
    """One item per (pseudonym, reading day, dataset): `pk=HISTORY#<pseudonym>`,
    `sk=DAY#<YYYY-MM-DD>#<dataset_id>`, the `DayHistogram` JSON in `doc`, `expires_at` (TTL).
    The items carry neither `day` nor `user_key`, so they stay out of the table's GSIs. One
    participant's window is one Query (QUERY_THREADS participants at a time); an item holds
    one day's counts per charted value, a few KB at most (every distinct value of five vitals
    at the chart's resolution), far below DynamoDB's 400 KB (`HISTOGRAM_BUDGET` is checked on
    write). Same IAM actions as the analysis store (Query, BatchWriteItem)."""

    def __init__(
        self, table: str, client: Any, *, ttl_days: int = 400, sleep: Any = time.sleep
    ) -> None:
        self.table = table
        self.client = client
        self.ttl_days = ttl_days
        self.sleep = sleep

    def _sort_keys(self, pseudonym: str, low: str, high: str) -> list[str]:
        return [
            item["sk"]["S"]
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": {"S": history_pk(pseudonym)},
                    ":lo": {"S": low},
                    ":hi": {"S": high},
                },
                ProjectionExpression="sk",
            )
        ]

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH):
            self._write_batch(requests[start : start + BATCH])

    def _load(self, pseudonyms: list[str], since: str, until: str) -> list[str]:
        def window(label: str) -> list[str]:
            items = self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": {"S": history_pk(label)},
                    ":lo": {"S": f"{DAY_PREFIX}{since}"},
                    ":hi": {"S": f"{DAY_PREFIX}{until}#~"},  # '~' sorts after any dataset id
                },
            )
            return [str(item["doc"]["S"]) for item in items]

        return [doc for docs in self._each(window, pseudonyms) for doc in docs]

    def _each(self, query: Callable[[str], list[str]], labels: list[str]) -> list[list[str]]:
        """`query` of each participant, QUERY_THREADS at a time (one Query is a round trip;
        a file of thousands of participants would wait for them one by one)."""
        if len(labels) <= 1:
            return [query(label) for label in labels]
        with ThreadPoolExecutor(max_workers=min(QUERY_THREADS, len(labels))) as pool:
            return list(pool.map(query, labels))

    def _save(self, histograms: Iterator[JsonObject], drop_before: str) -> None:
        expires = str(int(time.time() + self.ttl_days * 86400))
        requests: list[dict[str, Any]] = []
        labels: set[str] = set()
        for h in histograms:  # every budget checked before the first write, as before
            labels.add(str(h["pseudonym"]))
            doc = json.dumps(h, separators=(",", ":"))
            if size_of(h) > HISTOGRAM_BUDGET:
                raise PermanentError("history store: a day's histogram exceeds its item budget")
            requests.append(
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": history_pk(str(h["pseudonym"]))},
                            "sk": {"S": day_sk(str(h["day"]), str(h["dataset_id"]))},
                            "doc": {"S": doc},
                            "expires_at": {"N": expires},
                        }
                    }
                }
            )
        self._write(requests)
        before = f"{DAY_PREFIX}{drop_before}"
        listed = sorted(labels)
        old = self._each(lambda label: self._sort_keys(label, DAY_PREFIX, before), listed)
        stale = [
            {"DeleteRequest": {"Key": {"pk": {"S": history_pk(label)}, "sk": {"S": sk}}}}
            for label, keys in zip(listed, old, strict=True)
            for sk in keys
            if sk < before
        ]
        self._write(stale)

    def _erase(self, pseudonym: str) -> int:
        keys = self._sort_keys(pseudonym, DAY_PREFIX, f"{DAY_PREFIX}~")
        self._write(
            [
                {"DeleteRequest": {"Key": {"pk": {"S": history_pk(pseudonym)}, "sk": {"S": sk}}}}
                for sk in keys
            ]
        )
        return len(keys)
