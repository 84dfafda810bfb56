"""The part plan of S3 compose (adapters/aws/s3.compose_plan): pure, on small numbers."""

from __future__ import annotations

import random

import pytest

from healthpipe.adapters.aws.s3 import PartStep, compose_plan


def covered(steps: list[PartStep]) -> list[tuple[str, int, int]]:
    """The (key, start, end) pieces in order, neighbours of one key merged."""
    out: list[tuple[str, int, int]] = []
    for step in steps:
        for piece in step.pieces:
            if out and out[-1][0] == piece.key and out[-1][2] == piece.start:
                out[-1] = (piece.key, out[-1][1], piece.end)
            else:
                out.append((piece.key, piece.start, piece.end))
    return out


def check(
    parts: list[tuple[str, int]], min_part: int, max_part: int, skip: int = 0
) -> list[PartStep]:
    """`parts` (key, size), each read from byte `skip` (a header kept from the first only)."""
    ranges = [(key, min(skip, size), size) for key, size in parts]
    steps = compose_plan(ranges, min_part, max_part)
    assert covered(steps) == [(k, a, b) for k, a, b in ranges if b > a]
    for step in steps[:-1]:
        assert step.size >= min_part
    for step in steps:
        assert 0 < step.size <= max(max_part, 2 * min_part)
        if step.copy:
            assert len(step.pieces) == 1 and step.size <= max_part
        else:
            assert step.size < 2 * min_part  # the most held in memory
    return steps


def test_large_parts_are_copied_and_small_neighbours_gathered() -> None:
    steps = check([("a", 12), ("b", 1), ("c", 2), ("d", 20), ("e", 0), ("f", 3)], 10, 50)
    assert [s.copy for s in steps] == [True, False, True, False]
    # b + c are topped up from d's head; d's rest is copied by range
    assert [(p.key, p.start, p.end) for p in steps[1].pieces] == [
        ("b", 0, 1),
        ("c", 0, 2),
        ("d", 0, 7),
    ]
    assert steps[2].pieces[0].start == 7


def test_skipped_heads_are_left_out() -> None:
    steps = compose_plan([("a", 0, 12), ("b", 4, 30)], 10, 50)
    assert [(s.copy, [(p.key, p.start, p.end) for p in s.pieces]) for s in steps] == [
        (True, [("a", 0, 12)]),
        (True, [("b", 4, 30)]),
    ]


def test_parts_above_the_maximum_are_split_in_ranges() -> None:
    steps = check([("a", 101)], 10, 50)
    assert [s.size for s in steps] == [33, 34, 34]


@pytest.mark.parametrize("seed", range(20))
def test_random_layouts_keep_order_and_s3_s_bounds(seed: int) -> None:
    rng = random.Random(seed)
    parts = [(f"p{i}", rng.choice([0, 1, 3, 9, 10, 11, 25, 60, 130])) for i in range(12)]
    check(parts, 10, 50, skip=rng.choice([0, 0, 2]))
