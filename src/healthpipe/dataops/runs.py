"""Consecutive runs of weighted items under a limit: the one grouping rule of the analysis's
participant groups (`analysis/buckets.participant_groups`) and of the lake write's COPYs
(`lake_write._cuts`: participant buckets, then a large bucket's days)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def weighted_runs(items: Iterable[tuple[T, int]], limit: int) -> list[list[T]]:
    """`items` ((item, weight) in order) cut into consecutive runs, in order: a new run
    starts before an item would take the current one above `limit`, so a run weighs at most
    `limit` unless it is one item heavier than the limit, which stands alone."""
    runs: list[list[T]] = []
    run: list[T] = []
    weight = 0
    for item, n in items:
        if run and weight + n > limit:
            runs.append(run)
            run, weight = [], 0
        run.append(item)
        weight += n
    if run:
        runs.append(run)
    return runs
