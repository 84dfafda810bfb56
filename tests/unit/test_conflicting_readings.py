"""Conflicting readings (issue 13, item 6, ingest side).

Two readings of one participant at one instant with different values: the first stayed
processed and the second became `duplicate_reading`, so an abnormal value vanished from the
analysis. A later reading whose vital values differ from the first one's is now
`conflicting_reading` (counted in the manifest's reasons; analysis scores the rejected rows
whose reason is exactly that); exact repeats (70 and 70.0 agree) stay `duplicate_reading`.
The seed profile keeps the original system's behaviour: every repeat is a duplicate.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, ValidationResult, validate_file
from healthpipe.dataops.validation import file as validate_module

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"
NOW = "2025-09-18T00:00:00+00:00"
T0 = "2025-09-17T12:00:00Z"


def reading(when: str = T0, user: str = "u1", hr: str = "70", spo2: str = "98") -> str:
    return f"{when},{user},{hr},{spo2},100,36.8,120,80"


def run(
    tmp_path: Path, lines: list[str], profile: str = "plausible"
) -> tuple[ValidationResult, dict[int, str], list[dict[str, str]]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "in.csv"
    source.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    out = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    result = validate_file(
        source,
        read_header(source),
        load_profile(profile),
        out,
        now_iso=NOW,
        limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "duck"),
    )
    with out.rejected_csv.open(newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    return result, {int(r["source_row"]): r["reject_reason"] for r in rejected}, rejected


def test_a_conflicting_reading_gets_its_own_reason(tmp_path: Path) -> None:
    """The issue's case: normal 70 first, abnormal 96 second."""
    result, reasons, rejected = run(tmp_path, [reading(hr="70"), reading(hr="96")])
    assert reasons == {2: "conflicting_reading"}
    assert result.reasons == {"conflicting_reading": 1}
    assert (result.rows_valid, result.rows_rejected) == (1, 1)
    # the rejected cells stay plain numbers, readable by the analysis
    assert float(rejected[0]["heart_rate"]) == 96.0
    assert all(float(rejected[0][c]) for c in ("spo2", "temp_c", "systolic_bp"))


def test_exact_repeats_stay_duplicates_and_conflicts_are_told_apart(tmp_path: Path) -> None:
    lines = [
        reading(hr="70"),  # 1: first, processed
        reading(hr="70.0"),  # 2: the same value written otherwise: a duplicate
        reading(hr="71"),  # 3: conflicting
        reading(when="2025-09-17T14:00:00+02:00", hr="70"),  # 4: same instant, same values
        reading(hr="70", spo2=""),  # 5: a value missing: conflicting and missing_spo2
        reading(hr="999"),  # 6: invalid and conflicting
        reading(user="u2"),  # 7: another participant
    ]
    result, reasons, _ = run(tmp_path, lines)
    assert reasons == {
        2: "duplicate_reading",
        3: "conflicting_reading",
        4: "duplicate_reading",
        5: "missing_spo2;conflicting_reading",
        6: "invalid_heart_rate;conflicting_reading",
    }
    assert result.reasons["conflicting_reading"] == 3
    assert result.reasons["duplicate_reading"] == 2


def test_seed_keeps_every_repeat_a_duplicate(tmp_path: Path) -> None:
    _, reasons, _ = run(tmp_path, [reading(hr="70"), reading(hr="96")], profile="seed")
    assert reasons == {2: "duplicate_reading"}


@pytest.mark.parametrize("profile", ["plausible", "seed"])
def test_staged_and_table_paths_agree_on_conflicts(
    tmp_path: Path, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = []
    for i in range(300):
        when = f"2025-09-17T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
        lines.append(reading(when=when, user=f"u{i % 7}", hr=str(60 + i % 50)))
        if i % 11 == 0:
            lines.append(reading(when=when, user=f"u{i % 7}", hr=str(60 + i % 50)))  # exact
        if i % 13 == 0:
            lines.append(reading(when=when, user=f"u{i % 7}", hr=str(130 + i % 20)))  # conflict
    staged = run(tmp_path / "staged", lines, profile)
    monkeypatch.setattr(validate_module, "validate_staged", lambda *a, **k: None)
    tabled = run(tmp_path / "table", lines, profile)
    assert json.dumps(staged[0].__dict__, sort_keys=True) == json.dumps(
        tabled[0].__dict__, sort_keys=True
    )
    for name in ("p.csv", "r.csv"):
        assert (tmp_path / "staged" / name).read_bytes() == (tmp_path / "table" / name).read_bytes()
    expected = {"plausible": "conflicting_reading", "seed": "duplicate_reading"}[profile]
    assert staged[0].reasons.get(expected, 0) >= 23
