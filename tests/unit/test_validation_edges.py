"""Every rule edge of the `seed` and `plausible` profiles, through the real DuckDB validation.

Each test writes a small CSV, validates it with `dataops.validation.validate_file` and reads the
processed and rejected CSVs back: a row is valid iff it is in processed, and a rejected row's
`reject_reason` lists every rule it fails, `;`-joined, in the fixed order
event_time, user_id, heart_rate, spo2, steps, temp_c, systolic_bp, diastolic_bp, bp order,
duplicate.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from healthpipe.constants import REQUIRED_COLUMNS
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file

NOW = "2025-09-18T00:00:00+00:00"
GOOD: dict[str, str] = {
    "event_time": "2025-09-17T12:00:00Z",
    "user_id": "u1",
    "heart_rate": "70",
    "spo2": "98",
    "steps": "100",
    "temp_c": "36.8",
    "systolic_bp": "120",
    "diastolic_bp": "80",
}
SEED_RANGES = {
    "heart_rate": ("50", "180"),
    "spo2": ("90", "100"),
    "steps": ("0", "50000"),
    "temp_c": ("35.0", "40.0"),
    "systolic_bp": ("90", "180"),
    "diastolic_bp": ("60", "120"),
}
PLAUSIBLE_RANGES = {
    "heart_rate": ("20", "300"),
    "spo2": ("50", "100"),
    "steps": ("0", "100000"),
    "temp_c": ("30", "44"),
    "systolic_bp": ("50", "300"),
    "diastolic_bp": ("20", "200"),
}
RANGES = {"seed": SEED_RANGES, "plausible": PLAUSIBLE_RANGES}
NOT_NUMBERS = ["abc", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "1_000",
               "0x10", "0X1A", "12abc", "1,5", "--5", "true"]  # fmt: skip


@dataclass
class Split:
    rows_input: int
    rows_valid: int
    rows_rejected: int
    reasons: dict[str, int]
    processed: list[dict[str, str]]
    rejected: dict[int, str]  # source_row -> reject_reason

    def reason_of(self, source_row: int) -> str | None:
        return self.rejected.get(source_row)


def row(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def distinct(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same rows as readings of different users, so that none is a duplicate (rows whose
    user_id is under test keep theirs)."""
    return [
        {**r, "user_id": f"u1-{i}"} if r["user_id"] == GOOD["user_id"] else r
        for i, r in enumerate(rows)
    ]


def partner(profile: str, field: str) -> dict[str, str]:
    """For a blood-pressure edge, the other pressure at the end of its range that keeps the
    diastolic < systolic order whatever the edge value (so only the range rule is exercised)."""
    ranges = RANGES[profile]
    if field == "diastolic_bp":
        return {"systolic_bp": ranges["systolic_bp"][1]}
    if field == "systolic_bp":
        return {"diastolic_bp": ranges["diastolic_bp"][0]}
    return {}


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REQUIRED_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


def validate_csv(tmp_path: Path, profile: str, source: Path, now: str = NOW) -> Split:
    out = SplitPaths(
        tmp_path / "processed.csv", tmp_path / "processed.parquet", tmp_path / "rejected.csv"
    )
    result = validate_file(
        source,
        read_header(source),
        load_profile(profile),
        out,
        now_iso=now,
        limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "duck"),
    )
    with out.processed_csv.open(newline="", encoding="utf-8") as handle:
        processed = list(csv.DictReader(handle))
    rejected: dict[int, str] = {}
    if out.rejected_csv.exists():
        with out.rejected_csv.open(newline="", encoding="utf-8") as handle:
            for rec in csv.DictReader(handle):
                rejected[int(rec["source_row"])] = rec["reject_reason"]
    return Split(
        result.rows_input,
        result.rows_valid,
        result.rows_rejected,
        result.reasons,
        processed,
        rejected,
    )


def validate_rows(
    tmp_path: Path, profile: str, rows: list[dict[str, str]], now: str = NOW
) -> Split:
    split = validate_csv(tmp_path, profile, write_csv(tmp_path / "in.csv", rows), now)
    assert split.rows_input == len(rows) == split.rows_valid + split.rows_rejected
    assert len(split.processed) == split.rows_valid
    assert len(split.rejected) == split.rows_rejected
    return split


def only_reasons(tmp_path: Path, profile: str, rows: list[dict[str, str]]) -> list[str | None]:
    """The reject reason of each row (None when valid), in input order; rows are made readings
    of different users first, so duplicates play no part."""
    split = validate_rows(tmp_path, profile, distinct(rows))
    return [split.reason_of(i) for i in range(1, len(rows) + 1)]


PROFILES = ["seed", "plausible"]


@pytest.mark.parametrize("profile", PROFILES)
def test_good_row_is_valid_and_written_to_processed(tmp_path: Path, profile: str) -> None:
    split = validate_rows(tmp_path, profile, [row()])
    assert split.rows_valid == 1 and split.rejected == {}
    assert split.processed[0]["user_id"] == "u1"
    assert split.processed[0]["heart_rate"] == "70"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("field", list(SEED_RANGES))
def test_range_edges_are_inclusive(tmp_path: Path, profile: str, field: str) -> None:
    low, high = RANGES[profile][field]
    other = partner(profile, field)
    rows = [row(**{field: v}, **other) for v in (low, high, f" {high} ", f"{float(low):.3f}")]
    assert only_reasons(tmp_path, profile, rows) == [None] * 4


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("field", list(SEED_RANGES))
def test_just_outside_range_is_invalid(tmp_path: Path, profile: str, field: str) -> None:
    low, high = (float(v) for v in RANGES[profile][field])
    below, above = f"{low - 0.01:.2f}", f"{high + 0.01:.2f}"
    other = partner(profile, field)
    rows = [row(**{field: v}, **other) for v in (below, above)]
    assert only_reasons(tmp_path, profile, rows) == [f"invalid_{field}"] * 2


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("field", list(REQUIRED_COLUMNS))
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_field_is_missing(tmp_path: Path, profile: str, field: str, blank: str) -> None:
    assert only_reasons(tmp_path, profile, [row(**{field: blank})]) == [f"missing_{field}"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("field", list(SEED_RANGES))
def test_non_numbers_are_invalid(tmp_path: Path, profile: str, field: str) -> None:
    rows = [row(**{field: value}) for value in NOT_NUMBERS]
    reasons = only_reasons(tmp_path, profile, rows)
    expected = [f"invalid_{field}"] * len(NOT_NUMBERS)
    if field in ("systolic_bp", "diastolic_bp"):
        # ±1e999 overflow to ±inf, which also puts the two pressures out of order
        overflow = {"1e999", "-1e999"}
        reasons = [
            r.split(";")[0] if v in overflow and r else r
            for v, r in zip(NOT_NUMBERS, reasons, strict=True)
        ]
    assert reasons == expected, dict(zip(NOT_NUMBERS, reasons, strict=True))


@pytest.mark.parametrize("profile", PROFILES)
def test_plain_decimal_spellings_are_numbers(tmp_path: Path, profile: str) -> None:
    rows = [row(heart_rate="70.0"), row(heart_rate="+70"), row(temp_c="36.80"),
            row(steps="1e2"), row(spo2="98.")]  # fmt: skip
    assert only_reasons(tmp_path, profile, rows) == [None] * len(rows)


def test_steps_must_be_whole_in_plausible_but_not_in_seed(tmp_path: Path) -> None:
    rows = [row(steps="10.5"), row(steps="10.0"), row(steps="0.1")]
    (tmp_path / "p").mkdir()
    (tmp_path / "s").mkdir()
    assert only_reasons(tmp_path / "p", "plausible", rows) == [
        "invalid_steps",
        None,
        "invalid_steps",
    ]
    assert only_reasons(tmp_path / "s", "seed", rows) == [None, None, None]


def test_seed_rejects_dbp_greater_than_sbp_only(tmp_path: Path) -> None:
    rows = [
        row(systolic_bp="100", diastolic_bp="100"),  # equal: allowed by `le`
        row(systolic_bp="100", diastolic_bp="101"),
        row(systolic_bp="100", diastolic_bp="100.5"),
    ]
    assert only_reasons(tmp_path, "seed", rows) == [None, "dbp_gt_sbp", "dbp_gt_sbp"]


def test_plausible_rejects_dbp_greater_or_equal_to_sbp(tmp_path: Path) -> None:
    rows = [
        row(systolic_bp="100", diastolic_bp="99.9"),
        row(systolic_bp="100", diastolic_bp="100"),
        row(systolic_bp="100", diastolic_bp="101"),
    ]
    assert only_reasons(tmp_path, "plausible", rows) == [None, "dbp_ge_sbp", "dbp_ge_sbp"]


@pytest.mark.parametrize("profile", PROFILES)
def test_bp_order_not_judged_when_a_pressure_is_missing_or_not_a_number(
    tmp_path: Path, profile: str
) -> None:
    rows = [row(systolic_bp="", diastolic_bp="80"), row(systolic_bp="abc", diastolic_bp="80")]
    assert only_reasons(tmp_path, profile, rows) == ["missing_systolic_bp", "invalid_systolic_bp"]


# --- event_time ------------------------------------------------------------------------------

ISO_ACCEPTED = [
    "2025-09-17T12:00:00Z",
    "2025-09-17T12:00:00.801681Z",
    "2025-09-17T12:00:00.1+02:00",
    "2025-09-17T12:00:00-05:30",
    "2025-09-17T12:00:00+0200",
    "2025-09-17T12:00:00",
    "2025-09-17 12:00:00",
    "2025-09-17T12:00",
    "2025-09-17",  # an ISO-8601 calendar date: read as midnight UTC
    " 2025-09-17T12:00:00Z ",
]
ISO_REJECTED = [
    "garbage",
    "yesterday",
    "17/09/2025 12:00",
    "09/17/2025",
    "2025-13-01T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "2025-09-17T25:00:00Z",
    "2025-09-17T12:00:00+25:00x",
    "1726574400",
    "2025-09-17T12:00:00 UTC+2",
    "2025/09/17 12:00:00",
]


def test_plausible_accepts_iso8601_forms(tmp_path: Path) -> None:
    rows = [row(event_time=t, user_id=f"u{i}") for i, t in enumerate(ISO_ACCEPTED)]
    reasons = only_reasons(tmp_path, "plausible", rows)
    assert reasons == [None] * len(rows), dict(zip(ISO_ACCEPTED, reasons, strict=True))


def test_plausible_rejects_timestamps_that_are_not_iso8601(tmp_path: Path) -> None:
    rows = [row(event_time=t, user_id=f"u{i}") for i, t in enumerate(ISO_REJECTED)]
    reasons = only_reasons(tmp_path, "plausible", rows)
    assert reasons == ["invalid_event_time"] * len(rows), dict(
        zip(ISO_REJECTED, reasons, strict=True)
    )


def test_seed_only_requires_a_non_empty_event_time(tmp_path: Path) -> None:
    rows = [row(event_time=t, user_id=f"u{i}") for i, t in enumerate(ISO_REJECTED)]
    assert only_reasons(tmp_path, "seed", rows) == [None] * len(rows)


def test_plausible_rejects_readings_too_far_in_the_future(tmp_path: Path) -> None:
    # NOW is 2025-09-18T00:00:00Z and the profile allows 24 hours of clock skew.
    rows = [
        row(event_time="2025-09-18T23:59:59Z", user_id="a"),
        row(event_time="2025-09-19T00:00:00Z", user_id="b"),  # exactly the limit
        row(event_time="2025-09-19T00:00:01Z", user_id="c"),
        row(event_time="2025-09-19T01:30:00+02:00", user_id="d"),  # 23:30Z: inside
        row(event_time="2030-01-01T00:00:00Z", user_id="e"),
        row(event_time="9999-12-31T23:59:59Z", user_id="f"),
    ]
    assert only_reasons(tmp_path, "plausible", rows) == [
        None,
        None,
        "invalid_event_time",
        None,
        "invalid_event_time",
        "invalid_event_time",
    ]


def test_seed_has_no_future_limit(tmp_path: Path) -> None:
    assert only_reasons(tmp_path, "seed", [row(event_time="2030-01-01T00:00:00Z")]) == [None]


# --- user_id ---------------------------------------------------------------------------------


def test_plausible_limits_user_id_length(tmp_path: Path) -> None:
    rows = [row(user_id="x" * 128), row(user_id="y" * 129), row(user_id=" " + "z" * 128 + " ")]
    assert only_reasons(tmp_path, "plausible", rows) == [None, "invalid_user_id", None]


def test_seed_has_no_user_id_length_limit(tmp_path: Path) -> None:
    assert only_reasons(tmp_path, "seed", [row(user_id="y" * 500)]) == [None]


# --- duplicates ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_duplicates_after_the_first_are_rejected(tmp_path: Path, profile: str) -> None:
    rows = [
        row(user_id="u1", heart_rate="70"),
        row(user_id="u2", heart_rate="71"),  # same instant, other user: fine
        row(user_id="u1", heart_rate="72"),  # same user and instant: duplicate
        row(user_id="u1", event_time="2025-09-17T12:01:00Z"),
        row(user_id="u1", heart_rate="73"),  # a second duplicate of row 1
    ]
    split = validate_rows(tmp_path, profile, rows)
    # other values than the first reading's: conflicting (seed: no such notion)
    reason = "duplicate_reading" if profile == "seed" else "conflicting_reading"
    assert split.rejected == {3: reason, 5: reason}
    assert [r["heart_rate"] for r in split.processed] == ["70", "71", "70"]
    assert split.reasons == {reason: 2}


def test_plausible_duplicates_compare_instants_across_offsets(tmp_path: Path) -> None:
    rows = [
        row(event_time="2025-09-17T12:00:00Z"),
        row(event_time="2025-09-17T14:00:00+02:00"),
        row(event_time="2025-09-17T07:00:00-05:00"),
        row(event_time="2025-09-17T12:00:00.000Z"),
        row(event_time="2025-09-17T12:00:00.001Z"),  # a different instant
    ]
    split = validate_rows(tmp_path, "plausible", rows)
    assert split.rejected == {
        2: "duplicate_reading",
        3: "duplicate_reading",
        4: "duplicate_reading",
    }


def test_seed_duplicates_compare_event_time_text(tmp_path: Path) -> None:
    rows = [row(event_time="2025-09-17T12:00:00Z"), row(event_time="2025-09-17T14:00:00+02:00")]
    assert validate_rows(tmp_path, "seed", rows).rejected == {}


# --- several reasons on one row --------------------------------------------------------------


def test_every_reason_is_kept_in_the_fixed_order_plausible(tmp_path: Path) -> None:
    bad = {
        "event_time": "not-a-time",
        "user_id": "u" * 200,
        "heart_rate": "nan",
        "spo2": "",
        "steps": "12.5",
        "temp_c": "inf",
        "systolic_bp": "100",
        "diastolic_bp": "150",
    }
    reasons = only_reasons(tmp_path, "plausible", [bad])
    assert reasons == [
        "invalid_event_time;invalid_user_id;invalid_heart_rate;missing_spo2;invalid_steps;"
        "invalid_temp_c;dbp_ge_sbp"
    ]


def test_every_reason_is_kept_in_the_fixed_order_seed(tmp_path: Path) -> None:
    rows = [
        row(),
        {
            "event_time": "2025-09-17T12:00:00Z",
            "user_id": "u1",
            "heart_rate": "49",
            "spo2": "101",
            "steps": "-1",
            "temp_c": "40.1",
            "systolic_bp": "85",
            "diastolic_bp": "121",
        },
        {**{k: "" for k in REQUIRED_COLUMNS}},
    ]
    split = validate_rows(tmp_path, "seed", rows)
    assert split.rejected[2] == (
        "invalid_heart_rate;invalid_spo2;invalid_steps;invalid_temp_c;invalid_systolic_bp;"
        "invalid_diastolic_bp;dbp_gt_sbp;duplicate_reading"
    )
    assert split.rejected[3] == ";".join(f"missing_{c}" for c in REQUIRED_COLUMNS)
    assert split.reasons["duplicate_reading"] == 1
    assert split.reasons["missing_event_time"] == 1
    assert split.reasons["invalid_heart_rate"] == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_source_row_is_the_one_based_data_record_index(tmp_path: Path, profile: str) -> None:
    rows = [row(user_id=f"u{i}", heart_rate="10" if i % 3 == 0 else "70") for i in range(1, 11)]
    split = validate_rows(tmp_path, profile, rows)
    assert sorted(split.rejected) == [3, 6, 9]
    assert set(split.rejected.values()) == {"invalid_heart_rate"}


# A plain decimal number (optionally signed, optionally with an exponent): the numeric syntax
# both profiles accept. Anything else is not a number, whatever a database cast might make of it.
PLAIN_DECIMAL = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
ODD_SPELLINGS = [
    "70", "+70", "70.", ".7e2", "7e1", "7E1", "0070", "70e0", "700e-1", "0x46", "0b1", "0o7",
    "70_0", "7_0", "\u0667\u0660", "\uff17\uff10", "70\u00a0", "\u00a070", "\u200b70",
    "\x0b70", "\f70", "70\x0b", "70%", "$70", "70.0.0", "1e", "e1", ".", "-", "+", "7 0",
    "- 70", "+-70", "70-", "1e+", "7e1.5", "70L", "70f", "70d", "0070.000", "  +70.  ",
]  # fmt: skip


@pytest.mark.parametrize("profile", PROFILES)
def test_only_plain_decimals_are_numbers(tmp_path: Path, profile: str) -> None:
    import re

    low, high = (float(v) for v in RANGES[profile]["heart_rate"])

    def expected(value: str) -> str | None:
        text = value.strip(" \u00a0")  # padding with spaces (also no-break ones) is allowed
        ok = re.fullmatch(PLAIN_DECIMAL, text) is not None and low <= float(text) <= high
        return None if ok else "invalid_heart_rate"

    rows = [row(heart_rate=value) for value in ODD_SPELLINGS]
    got = only_reasons(tmp_path, profile, rows)
    want = [expected(v) for v in ODD_SPELLINGS]
    mismatches = {v: g for v, g, w in zip(ODD_SPELLINGS, got, want, strict=True) if g != w}
    assert mismatches == {}
