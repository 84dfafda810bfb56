"""The one grouping rule of the participant groups and the lake write's cuts."""

from __future__ import annotations

from datetime import date

from healthpipe.dataops.runs import weighted_runs


def test_no_items_make_no_runs() -> None:
    assert weighted_runs([], 10) == []


def test_a_new_run_starts_before_the_limit_would_be_passed() -> None:
    items = [("a", 4), ("b", 5), ("c", 2), ("d", 9)]
    assert weighted_runs(items, 10) == [["a", "b"], ["c"], ["d"]]


def test_a_run_may_weigh_exactly_the_limit() -> None:
    assert weighted_runs([("a", 6), ("b", 4), ("c", 1)], 10) == [["a", "b"], ["c"]]
    assert weighted_runs([("a", 10), ("b", 10)], 10) == [["a"], ["b"]]


def test_an_item_above_the_limit_stands_alone() -> None:
    items = [(1, 3), (2, 25), (3, 3), (4, 11), (5, 11)]
    assert weighted_runs(items, 10) == [[1], [2], [3], [4], [5]]
    assert weighted_runs([("only", 99)], 10) == [["only"]]


def test_any_item_type_and_any_iterable_in_order() -> None:
    days = {date(2025, 6, d): 40 for d in range(1, 6)}
    runs = weighted_runs(days.items(), 100)
    assert [[d.day for d in run] for run in runs] == [[1, 2], [3, 4], [5]]
