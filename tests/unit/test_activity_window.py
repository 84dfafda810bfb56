"""Activity context is about now: the steps of the participant's reading before count only
when that reading is at most ten minutes earlier (`clinical.ACTIVITY_PREVIOUS_WITHIN_SECONDS`),
in SQL as in the Python twin; and an episode's worst reading is one reading (its value, pair
and time belong together, even when a crisis reading has no systolic value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_conflicting_and_activity import run

from healthpipe.domain import clinical as cl
from support.twins import during_activity

T = "2026-01-01 {}+00"


def reading(
    n: int, when: str, hr: float, steps: float, sbp: Any = 115.0, dbp: float = 75.0
) -> tuple[Any, ...]:
    return (n, T.format(when), "p1", hr, 98.0, steps, 36.8, sbp, dbp)


def test_the_window_is_ten_minutes() -> None:
    assert cl.ACTIVITY_PREVIOUS_WITHIN_SECONDS == 600


@pytest.mark.parametrize(
    ("steps", "previous", "seconds", "active"),
    [
        (2500, None, None, True),  # steps in the reading itself
        (1000, None, None, False),  # above the threshold, not at it
        (20, 2500, 60, True),
        (20, 2500, 600, True),  # ten minutes: still counts
        (20, 2500, 601, False),
        (20, 2500, 3 * 3600, False),  # a walk three hours ago explains nothing now
        (20, 2500, None, False),  # no time: not known to be recent
        (None, 2500, 30, True),
        (20, 900, 30, False),
    ],
)
def test_python_twin(
    steps: float | None, previous: float | None, seconds: float | None, active: bool
) -> None:
    assert during_activity(steps, previous, seconds) is active


def test_steps_long_before_do_not_make_a_reading_active(tmp_path: Path) -> None:
    # GIVEN a walk (2,500 steps, HR 100) and three later resting readings of HR 122
    rows = [
        reading(1, "00:00:00", 100.0, 2500.0),
        reading(2, "00:10:00", 122.0, 20.0),  # ten minutes after the walk: during activity
        reading(3, "01:40:00", 122.0, 20.0),  # the reading before is at rest
        reading(4, "02:00:00", 70.0, 3000.0),
        reading(5, "02:10:01", 122.0, 20.0),  # ten minutes and a second after steps
    ]
    # WHEN analyzed
    facts, anomalies = run(tmp_path, rows)
    # THEN only the reading within ten minutes of the walk is during activity (capped low);
    # the others are medium tachycardia findings
    got = [(a["source_row"], a["severity"], a["during_activity"]) for a in anomalies
           if a["rule"] == "news2"]  # fmt: skip
    assert got == [(1, 1, True), (2, 1, True), (3, 2, False), (5, 2, False)]
    assert facts["anomalies"]["heart_rate_during_activity"] == 2


def test_an_old_walk_does_not_break_an_episode(tmp_path: Path) -> None:
    # a walk, then (an hour later, at rest) three fast readings 20 minutes apart: an episode
    rows = [reading(1, "00:00:00", 80.0, 4000.0)] + [
        reading(2 + i, f"01:{20 * i:02d}:00", 125.0, 10.0) for i in range(3)
    ]
    facts, _ = run(tmp_path, rows)
    assert [(e["kind"], e["readings"]) for e in facts["episodes"]["list"]] == [
        ("tachycardia_news2_2", 3)
    ]


def test_an_episode_worst_reading_is_one_reading(tmp_path: Path) -> None:
    # GIVEN three crisis readings a minute apart, the second found on the diastolic alone
    # with no systolic value
    rows = [
        reading(1, "00:00:00", 70.0, 10.0, 185.0, 100.0),
        reading(2, "00:01:00", 70.0, 10.0, None, 125.0),
        reading(3, "00:02:00", 70.0, 10.0, 182.0, 95.0),
    ]
    # WHEN analyzed
    facts, _ = run(tmp_path, rows)
    # THEN the episode's worst value, pair and time are those of one reading (185/100 at
    # 00:00), not a value of one reading with the diastolic and time of another
    (episode,) = facts["episodes"]["list"]
    assert (episode["kind"], episode["readings"]) == ("hypertensive_crisis", 3)
    assert (
        episode["worst_value"],
        episode["worst_systolic_bp"],
        episode["worst_diastolic_bp"],
        episode["worst_time"][:19],
    ) == (185.0, 185.0, 100.0, "2026-01-01T00:00:00")
