"""ParticipantHistoryStore contract: DynamoDB (moto over HTTP, the analyses table) and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import moto_env
import pytest

from healthpipe.adapters.aws.analysis_store import DynamoParticipantHistoryStore
from healthpipe.adapters.local.history_store import SqliteParticipantHistoryStore
from healthpipe.adapters.local.sqlite import Database
from healthpipe.domain.documents import DayHistogram
from healthpipe.ports import ParticipantHistoryStore

D0 = date(2025, 5, 1)
A, B = "P-00000000000000aa", "P-00000000000000bb"


@pytest.fixture(params=["local", "aws"])
def store(request: pytest.FixtureRequest, db: Database) -> ParticipantHistoryStore:
    if request.param == "local":
        return SqliteParticipantHistoryStore(db)
    aws: dict[str, Any] = request.getfixturevalue("aws")
    table = moto_env.unique("contract-history")
    moto_env.create_analyses_table(aws["dynamodb"], table)
    return DynamoParticipantHistoryStore(table, aws["dynamodb"], ttl_days=30)


def hist(label: str, offset: int, dataset: str, hr: int = 60) -> DayHistogram:
    return DayHistogram(
        pseudonym=label,
        day=D0 + timedelta(days=offset),
        dataset_id=dataset,
        bins={"heart_rate": {hr: 3, hr + 1: 2}, "temp_c": {366: 5}},
    )


def test_saved_histograms_load_back_within_the_days(store: ParticipantHistoryStore) -> None:
    store.save([hist(A, 0, "d0"), hist(B, 0, "d0")], drop_before=D0 - timedelta(days=28))
    store.save([hist(A, 1, "d1"), hist(A, 2, "d2")], drop_before=D0 - timedelta(days=28))
    got = store.load([A], D0 + timedelta(days=1), D0 + timedelta(days=2))
    assert sorted((h.day, h.dataset_id) for h in got) == [
        (D0 + timedelta(days=1), "d1"),
        (D0 + timedelta(days=2), "d2"),
    ]
    assert got[0] == hist(A, 1, "d1")  # bins (whole-number keys) round-trip
    both = store.load([A, B], D0, D0 + timedelta(days=5))
    assert sorted(h.pseudonym for h in both) == [A, A, A, B]
    assert store.load([], D0, D0) == []


def test_saving_a_dataset_again_replaces_its_histogram(store: ParticipantHistoryStore) -> None:
    store.save([hist(A, 0, "d0", hr=60)], drop_before=D0)
    store.save([hist(A, 0, "d0", hr=70)], drop_before=D0)
    (only,) = store.load([A], D0, D0)
    assert only.bins["heart_rate"] == {70: 3, 71: 2}


def test_days_before_the_window_are_dropped(store: ParticipantHistoryStore) -> None:
    store.save([hist(A, k, f"d{k}") for k in range(5)] + [hist(B, 0, "d0")], drop_before=D0)
    store.save([hist(A, 5, "d5")], drop_before=D0 + timedelta(days=3))
    kept = store.load([A, B], D0 - timedelta(days=1), D0 + timedelta(days=10))
    assert sorted((h.pseudonym, h.dataset_id) for h in kept) == [
        (A, "d3"),
        (A, "d4"),
        (A, "d5"),
        (B, "d0"),  # only the saved participants are pruned
    ]


def test_erase_removes_every_histogram_of_the_participant(
    store: ParticipantHistoryStore,
) -> None:
    store.save([hist(A, k, f"d{k}") for k in range(3)] + [hist(B, 0, "d0")], drop_before=D0)
    assert store.erase(A) == 3
    assert store.load([A], D0, D0 + timedelta(days=10)) == []
    assert [h.pseudonym for h in store.load([B], D0, D0)] == [B]
    assert store.erase(A) == 0
    with pytest.raises(ValueError):
        store.erase("")


def test_histograms_stream_in_and_a_failure_midway_stores_none(
    store: ParticipantHistoryStore,
) -> None:
    """The stage hands its histograms over as a generator (a 10M-row file has about a
    million): read one at a time, and all or none stored."""
    store.save((hist(A, day, "d0") for day in range(3)), drop_before=D0)
    assert len(store.load([A], D0, D0 + timedelta(days=5))) == 3

    def broken() -> Iterator[DayHistogram]:
        yield hist(B, 0, "d1")
        raise RuntimeError("the analysis failed while its histograms were stored")

    with pytest.raises(RuntimeError):
        store.save(broken(), drop_before=D0)
    assert store.load([B], D0, D0 + timedelta(days=5)) == []
    store.save(iter(()), drop_before=D0)  # nothing to store: nothing changes
    assert len(store.load([A], D0, D0 + timedelta(days=5))) == 3
