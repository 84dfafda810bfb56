"""The cheap predicate only ever clears rows the full checks pass: for any cells, the reasons
computed with the shortcut equal the reasons of the full checks alone (both profiles)."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthpipe.constants import REQUIRED_COLUMNS
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation.common import INSTANT
from healthpipe.domain.validation_sql import (
    parsed_time_sql,
    quote_ident,
    reason_checks,
    reasons_sql,
    row_surely_valid_sql,
)
from support.duck import insert_rows

NOW = "2026-11-25T12:00:00+00:00"


def _edges() -> list[str]:
    """Each bound of both profiles, and just inside and outside it."""
    values = set()
    for name in ("plausible", "seed"):
        for rng in load_profile(name).ranges.values():
            for bound in (rng.min, rng.max):
                for delta in (-1, -0.5, -0.01, 0, 0.01, 0.5, 1):
                    values.add(f"{bound + delta:g}")
    return sorted(values)


EDGES = _edges()
NUMBERS = st.one_of(
    st.sampled_from(EDGES),
    st.integers(min_value=-10, max_value=100_001).map(str),
    st.floats(min_value=-1, max_value=400, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.decimals(min_value=0, max_value=300, places=2).map(str),
)
ODD_VALUES = [
    "",
    " ",
    "\t",
    " 72",
    "72 ",
    "\t72",
    "72\t",
    "72\n",
    "+72",
    "-0",
    "72.",
    ".5",
    "1e2",
    "1E+2",
    "1_000",
    "4_0",
    "7_2",
    "3_6.6",
    "9_8",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "0x48",
    "1,5",
    "72a",
    "١٢",
    "0072",
    "100.0",
    "100.0000001",
    "99.9999999",
    "36.60",
    "1e-9",
    "00",
    "9" * 40,
]
ODD_NUMBERS = st.sampled_from(ODD_VALUES)
TIME_VALUES = [
    "2026-11-01T00:00:00Z",
    "2026-11-01T00:00:00.250Z",
    "2026-11-01 00:00:00",
    "2026-11-01T00:00:00+02:00",
    "2026-11-01T00:00Z",
    "2026-11-01",
    " 2026-11-01T00:00:00Z",
    "2026-11-01T00:00:00Z ",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-26T11:00:00Z",
    "2026-11-26T13:00:00Z",
    "2030-01-01T00:00:00Z",
    "0026-11-01T00:00:00Z",
    "2026-11-01T24:00:00Z",
    "yesterday",
    "",
    "  ",
    "\t",
    "2026-11-01t00:00:00z",
    "20261101T000000Z",
    "2026-11-01T00:00:00.Z",
]
TIMES = st.one_of(
    st.sampled_from(TIME_VALUES),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
)
USER_VALUES = ["u1", "user_051", "", " ", "\t", " u1", "u1 ", "x" * 128, "x" * 129, "é", "\x01u"]
USERS = st.sampled_from(USER_VALUES)
CELLS = {
    "event_time": TIMES,
    "user_id": USERS,
    **{c: st.one_of(NUMBERS, ODD_NUMBERS) for c in REQUIRED_COLUMNS[2:]},
}
VALID = {
    "event_time": "2026-11-01T08:30:00Z",
    "user_id": "user_001",
    "heart_rate": "72",
    "spo2": "97",
    "steps": "120",
    "temp_c": "36.6",
    "systolic_bp": "121",
    "diastolic_bp": "79",
}


@st.composite
def near_valid_row(draw: st.DrawFn) -> dict[str, str]:
    """A valid row with one to three cells replaced: the rows a wrong shortcut would clear."""
    row = dict(VALID)
    for column in draw(st.lists(st.sampled_from(REQUIRED_COLUMNS), min_size=1, max_size=3)):
        row[column] = draw(CELLS[column])
    return row


ROWS = st.lists(near_valid_row(), min_size=1, max_size=40)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def _assert_same_reasons(
    con: duckdb.DuckDBPyConnection, profile_name: str, rows: list[dict[str, str]]
) -> None:
    profile = load_profile(profile_name)
    cols = ", ".join(f"{quote_ident(c)} VARCHAR" for c in REQUIRED_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cells ({cols})")
    insert_rows(
        con,
        "cells",
        [[None if row[c] == "" else row[c] for c in REQUIRED_COLUMNS] for row in rows],
    )
    full = f"concat_ws(';', {', '.join(reason_checks(profile, NOW, INSTANT))})"
    fast = row_surely_valid_sql(profile, NOW, INSTANT)
    found = con.execute(
        f"SELECT {reasons_sql(profile, NOW, INSTANT)}, {full}, coalesce({fast}, false) "
        f"FROM (SELECT *, {parsed_time_sql()} AS {INSTANT} FROM cells)"
    ).fetchall()
    for row, (with_shortcut, without, cleared) in zip(rows, found, strict=True):
        assert with_shortcut == without, row
        assert not cleared or without == "", row


@pytest.mark.parametrize("profile_name", ["plausible", "seed"])
def test_every_odd_cell_in_every_column_keeps_its_reasons(
    con: duckdb.DuckDBPyConnection, profile_name: str
) -> None:
    """The whole grid: each listed value in each column of an otherwise valid row."""
    values = {
        "event_time": TIME_VALUES,
        "user_id": USER_VALUES,
        **{c: ODD_VALUES + EDGES for c in REQUIRED_COLUMNS[2:]},
    }
    rows = [VALID | {col: value} for col, listed in values.items() for value in listed]
    _assert_same_reasons(con, profile_name, rows)


@pytest.mark.parametrize("profile_name", ["plausible", "seed"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS)
def test_the_shortcut_never_changes_a_rows_reasons(
    con: duckdb.DuckDBPyConnection, profile_name: str, rows: list[dict[str, str]]
) -> None:
    _assert_same_reasons(con, profile_name, rows)


def test_the_shortcut_clears_ordinary_rows(con: duckdb.DuckDBPyConnection) -> None:
    """It is a shortcut at all: a typical valid row passes it."""
    profile = load_profile("plausible")
    (cleared,) = con.execute(
        f"SELECT {row_surely_valid_sql(profile, NOW, INSTANT)} FROM (SELECT *, "
        f"{parsed_time_sql()} AS {INSTANT} FROM (SELECT '2026-11-01T00:00:00Z' AS event_time, "
        "'user_001' AS user_id, '72' AS heart_rate, '98' AS spo2, '120' AS steps, "
        "'36.6' AS temp_c, '120' AS systolic_bp, '80' AS diastolic_bp))"
    ).fetchone() or (None,)
    assert cleared is True
