"""One formula-injection policy for CSV cells, CSV column names and report text.

A table of tricky cells, each with the one answer every place must give: the SQL that writes
the processed and rejected CSVs, the header's column names, and the report's text. Plain
numbers (`-5`, `+1`) stay as written; everything else starting with a trigger or a look-alike
of one gets a leading `'` (docs/reports.md, "Spreadsheet formulas").
"""

from __future__ import annotations

import csv
import sys
import unicodedata
from pathlib import Path

import pytest

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import canonical_name, read_header
from healthpipe.dataops.validation import SplitPaths, validate_file
from healthpipe.domain.rules import RuleProfile
from healthpipe.report.safe import neutralise

# (cell, guarded): what a spreadsheet user must see for each cell.
TRICKY = [
    ("-5", False),  # a plain number: the spreadsheet reads -5, never a formula
    ("+1", False),
    ("-0.5", False),
    ("1e3", False),
    ("-5abc", True),  # not a number: a spreadsheet may take it for a formula
    ("-5+A1", True),
    ("+ 1", True),
    ("=1", True),
    ("=cmd|' /C calc'!A0", True),
    ("@x", True),
    ("@SUM(1)", True),
    ("\tx", True),
    ("\rx", True),
    ("\uff1d1", True),  # FULLWIDTH EQUALS SIGN
    ("\uff0b1", True),  # FULLWIDTH PLUS SIGN
    ("\uff20x", True),  # FULLWIDTH COMMERCIAL AT
    ("\ufe66x", True),  # SMALL EQUALS SIGN
    ("\u22125", True),  # MINUS SIGN: a look-alike, not a plain number
    ("x=1", False),
    ("'=1", False),  # already text
    ("u1", False),
]
# Report text is folded to one line first: a leading tab or CR is gone before the check.
FOLDED = {"\tx", "\rx"}


def _guarded(cell: str, guarded: bool) -> str:
    return "'" + cell if guarded else cell


@pytest.mark.parametrize(("cell", "guarded"), [t for t in TRICKY if t[0] not in FOLDED])
def test_report_text_follows_the_policy(cell: str, guarded: bool) -> None:
    assert neutralise(cell) == _guarded(cell, guarded)


@pytest.mark.parametrize(("cell", "guarded"), [t for t in TRICKY if t[0].strip() == t[0]])
def test_column_names_follow_the_policy(cell: str, guarded: bool) -> None:
    assert canonical_name(cell) == _guarded(cell.lower(), guarded)


def test_csv_cells_follow_the_policy(tmp_path: Path) -> None:
    # GIVEN a file whose text cells are the tricky ones, as a user id and as an extra column
    source = tmp_path / "tricky.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["event_time", "user_id", "heart_rate", "spo2", "steps", "temp_c",
                      "systolic_bp", "diastolic_bp", "note"])  # fmt: skip
        for i, (cell, _) in enumerate(TRICKY):
            when = f"2025-06-01T00:{i:02d}:00Z"
            out.writerow([when, cell, 70, 98, 10, 36.6, 120, 80, cell])  # valid
            out.writerow([when, cell, 700, 98, 10, 36.6, 120, 80, cell])  # rejected
    split = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    # WHEN it is validated
    validate_file(
        source,
        read_header(source),
        _profile(),
        split,
        now_iso="2025-12-01T00:00:00+00:00",
        limits=EngineLimits(memory_limit_mb=128, temp_dir=tmp_path / "tmp"),
    )
    # THEN both CSVs hold every cell guarded exactly as the table says
    expected = [_guarded(cell, guarded) for cell, guarded in TRICKY]
    for path in (split.processed_csv, split.rejected_csv):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["note"] for r in rows] == expected, path.name
    # the rejected CSV keeps user ids as written (the processed one trims them)
    with split.rejected_csv.open(newline="", encoding="utf-8") as handle:
        assert [r["user_id"] for r in csv.DictReader(handle)] == expected


def _profile() -> RuleProfile:
    try:
        from healthpipe.dataops.profiles import load_profile
    except ImportError:  # before the profiles moved out of domain/
        from healthpipe.domain.rules import load_profile  # type: ignore[attr-defined,no-redef]
    return load_profile("plausible")


def test_the_look_alikes_are_every_compatibility_form_of_a_trigger() -> None:
    from healthpipe.domain.formula import FORMULA_TRIGGERS

    compat = {
        ch
        for ch in map(chr, range(sys.maxunicode + 1))
        if unicodedata.normalize("NFKC", ch)[:1] in ("=", "+", "-", "@")
    }
    assert compat | {"\t", "\r", "\u2212"} == set(FORMULA_TRIGGERS)
