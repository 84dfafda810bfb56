"""AnalysisStore contract: DynamoDB (moto over HTTP, GSIs by_user/by_day) and SQLite."""

from __future__ import annotations

import json
import time
from typing import Any

import moto_env
import pytest

from healthpipe.adapters.aws.analysis_store import SUMMARY_BUDGET, DynamoAnalysisStore
from healthpipe.adapters.local.analysis_store import SqliteAnalysisStore
from healthpipe.adapters.local.sqlite import Database
from healthpipe.domain.documents import AnalysisSummary, FlaggedEpisode, FlaggedItem, FlaggedUser
from healthpipe.ports import AnalysisStore


@pytest.fixture(params=["local", "aws"])
def store(request: pytest.FixtureRequest, db: Database) -> AnalysisStore:
    if request.param == "local":
        return SqliteAnalysisStore(db)
    aws: dict[str, Any] = request.getfixturevalue("aws")
    table = moto_env.unique("contract-analyses")
    moto_env.create_analyses_table(aws["dynamodb"], table)
    return DynamoAnalysisStore(table, aws["dynamodb"], ttl_days=30)


def summary(dataset_id: str, epoch: float, **extra: Any) -> AnalysisSummary:
    return AnalysisSummary.model_validate(
        {
            "dataset_id": dataset_id,
            "created_epoch": epoch,
            "rows": {"input": 100, "valid": 98, "rejected": 2},
            "anomalies": {"total": 3, "by_severity": {"high": 1, "low": 2}},
            "worst_severity": "high",
            **extra,
        }
    )


def flagged_user(user_key: str, anomalies: int, **extra: Any) -> FlaggedUser:
    return FlaggedUser(
        item_key=f"user#{user_key}", user_key=user_key, kind="user", anomalies=anomalies, **extra
    )


def episode(index: int, user_key: str) -> FlaggedEpisode:
    return FlaggedEpisode(
        item_key=f"episode#{index:04d}", user_key=user_key, kind="episode", readings=4
    )


def test_save_get_and_flagged_per_user(store: AnalysisStore) -> None:
    now = time.time()
    store.save(summary("d1", now - 60), [flagged_user("P-aaaa", 2), episode(0, "P-aaaa")])
    store.save(summary("d2", now), [flagged_user("P-aaaa", 5), flagged_user("P-bbbb", 1)])
    assert store.get("d1") == summary("d1", now - 60)
    assert store.get("missing") is None
    mine = store.flagged_for_user("P-aaaa")
    assert len(mine) == 3
    assert isinstance(mine[0], FlaggedUser) and mine[0].anomalies == 5  # newest first
    assert {item.kind for item in mine} == {"user", "episode"}
    assert [item.readings for item in mine if isinstance(item, FlaggedEpisode)] == [4]
    assert [getattr(item, "anomalies", None) for item in store.flagged_for_user("P-bbbb")] == [1]
    assert store.flagged_for_user("P-nobody") == []


def test_recent_is_newest_first_with_limit_and_since(store: AnalysisStore) -> None:
    now = time.time()
    for n, age in enumerate((3 * 86400, 7200, 60)):
        store.save(summary(f"r{n}", now - age), [])
    assert [s.dataset_id for s in store.recent(limit=10)] == ["r2", "r1", "r0"]
    assert [s.dataset_id for s in store.recent(limit=2)] == ["r2", "r1"]
    assert [s.dataset_id for s in store.recent(limit=10, since_epoch=now - 86400)] == [
        "r2",
        "r1",
    ]


def test_saving_again_replaces_the_flagged_items(store: AnalysisStore) -> None:
    now = time.time()
    store.save(summary("d3", now), [flagged_user("P-cccc", 1), episode(0, "P-cccc")])
    store.save(summary("d3", now, worst_severity="low"), [flagged_user("P-cccc", 1)])
    again = store.get("d3")
    assert again is not None and again.worst_severity == "low"
    assert [item.kind for item in store.flagged_for_user("P-cccc")] == ["user"]


def test_summary_without_dataset_id_is_refused(store: AnalysisStore) -> None:
    with pytest.raises(ValueError, match="dataset_id"):
        store.save(AnalysisSummary(dataset_id=""), [])


def test_dynamo_items_stay_small_whatever_the_summary(aws: dict[str, Any]) -> None:
    # GIVEN a summary of several MB and 600 flagged items with big payloads
    table = moto_env.unique("contract-analyses-big")
    moto_env.create_analyses_table(aws["dynamodb"], table)
    store = DynamoAnalysisStore(table, aws["dynamodb"], ttl_days=7)
    huge = summary(
        "big",
        time.time(),
        top_anomalies=[
            {
                "user_key": f"P-{n:08x}",
                "metric": "heart_rate",
                "kind": "hr_high",
                "severity": "high",
                "value": n,
            }
            for n in range(50_000)
        ],
        reject_reasons={f"reason_{n}": n for n in range(5000)},
        summary="word " * 400_000,
    )
    flagged: list[FlaggedItem] = [
        flagged_user(f"P-{n:08x}", n, notes=["x" * 200] * 200) for n in range(600)
    ]
    # WHEN it is saved
    store.save(huge, flagged)
    # THEN every item is far below 400 KB, still readable, and marked as trimmed
    pages = aws["dynamodb"].get_paginator("scan").paginate(TableName=table)
    items = [item for page in pages for item in page["Items"]]
    assert len(items) == 601
    sizes = [sum(len(k) + len(json.dumps(v)) for k, v in item.items()) for item in items]
    assert max(sizes) < 100 * 1024
    stored = store.get("big")
    assert stored is not None and stored.trimmed is True
    assert stored.dataset_id == "big" and stored.rows.valid == 98
    summary_item = next(item for item in items if item["sk"]["S"] == "SUMMARY")
    assert len(summary_item["doc"]["S"].encode()) <= SUMMARY_BUDGET
    assert 0 < len(stored.top_anomalies) < 50_000
    ttl = {int(item["expires_at"]["N"]) for item in items}
    assert len(ttl) == 1 and ttl.pop() == int(huge.created_epoch + 7 * 86400)
