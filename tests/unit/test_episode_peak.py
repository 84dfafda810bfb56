"""An episode's peak is its worst value in the direction of its kind."""

from __future__ import annotations

from pathlib import Path

from healthpipe.dataops.analysis import analyze_parquet
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.domain.clinical import LOW_SIDE_KINDS

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def _row(minute: int, user: str, hr: int, spo2: int) -> str:
    return f"2026-01-01T00:{minute:02d}:00Z,{user},{hr},{spo2},10,36.8,115,75"


def test_low_side_kinds_are_the_bands_below_normal() -> None:
    assert {
        "bradycardia_news2_3",
        "low_heart_rate_news2_1",
        "low_spo2_news2_1",
        "low_spo2_news2_2",
        "low_spo2_news2_3",
        "low_systolic_bp_news2_1",
        "low_systolic_bp_news2_2",
        "low_systolic_bp_news2_3",
        "hypothermia_news2_3",
        "low_temperature_news2_1",
    } == LOW_SIDE_KINDS


def test_peak_is_lowest_for_low_spo2_and_highest_for_tachycardia(tmp_path: Path) -> None:
    # GIVEN one participant with three low SpO2 readings and one with three fast heart rates
    rows = [_row(0, "a", 70, 93), _row(1, "a", 70, 88), _row(2, "a", 70, 91)]
    rows += [_row(0, "b", 120, 98), _row(1, "b", 150, 98), _row(2, "b", 130, 98)]
    # and others far faster, so the distance from the typical abnormal value misleads
    rows += [_row(m, "c", 250, 98) for m in range(6)]
    source = tmp_path / "in.csv"
    source.write_text("\n".join([HEADER, *rows]) + "\n")
    out = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    limits = EngineLimits(temp_dir=tmp_path / "tmp")
    validate_file(
        source,
        read_header(source),
        load_profile("plausible"),
        out,
        now_iso="2026-11-25T00:00:00+00:00",
        limits=limits,
    )
    # WHEN the dataset is analyzed
    facts = analyze_parquet(out.processed_parquet, tmp_path / "a.parquet", limits=limits)
    # THEN each episode's peak is its most abnormal value
    peaks = {(e["user_id"], e["kind"]): e for e in facts["episodes"]["list"]}
    low = peaks[("a", "low_spo2_news2_3")]
    assert (low["peak_value"], low["worst_value"], low["worst"]) == (88.0, 88.0, "lowest")
    high = peaks[("b", "tachycardia_news2_3")]
    assert (high["peak_value"], high["worst"], high["direction"]) == (150.0, "highest", "high")
