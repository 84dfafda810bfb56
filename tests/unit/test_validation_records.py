"""Record-level behaviour of the DuckDB validation: malformed records (too many / too few
columns) are rejected as `malformed_row` without shifting the numbering of the records after
them, quoted newlines are one record, extra columns are kept, and cells a spreadsheet would run
as formulas are neutralised in both outputs (numbers like -5 untouched)."""

from __future__ import annotations

import csv
from pathlib import Path

from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.header import read_header
from healthpipe.dataops.profiles import load_profile
from healthpipe.dataops.validation import SplitPaths, ValidationResult, validate_file

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def good(minute: int, user: str = "u1", heart_rate: str = "70") -> str:
    return f"2025-09-17T12:{minute:02d}:00Z,{user},{heart_rate},98,100,36.8,120,80"


def run(
    tmp_path: Path, text: str, profile: str = "plausible"
) -> tuple[ValidationResult, list[dict[str, str]], list[dict[str, str]]]:
    source = tmp_path / "in.csv"
    source.write_bytes(text.encode("utf-8"))
    out = SplitPaths(tmp_path / "p.csv", tmp_path / "p.parquet", tmp_path / "r.csv")
    result = validate_file(
        source,
        read_header(source),
        load_profile(profile),
        out,
        now_iso="2025-09-18T00:00:00+00:00",
        limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "duck"),
    )
    with out.processed_csv.open(newline="", encoding="utf-8") as handle:
        processed = list(csv.DictReader(handle))
    rejected: list[dict[str, str]] = []
    if out.rejected_csv.exists():
        with out.rejected_csv.open(newline="", encoding="utf-8") as handle:
            rejected = list(csv.DictReader(handle))
    assert result.rows_input == result.rows_valid + result.rows_rejected
    assert len(processed) == result.rows_valid
    assert len(rejected) == result.rows_rejected
    return result, processed, rejected


def reasons(rejected: list[dict[str, str]]) -> dict[int, str]:
    return {int(r["source_row"]): r["reject_reason"] for r in rejected}


def test_malformed_records_are_rejected_and_numbering_stays_right(tmp_path: Path) -> None:
    lines = [
        HEADER,
        good(0),  # 1
        good(1) + ",extra,cells",  # 2: too many columns
        good(2),  # 3
        "2025-09-17T12:03:00Z,u1,70",  # 4: too few columns
        good(4, heart_rate="10"),  # 5: parses, fails a rule
        good(5),  # 6
    ]
    result, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert result.rows_input == 6
    assert reasons(rejected) == {
        2: "malformed_row",
        4: "malformed_row",
        5: "invalid_heart_rate",
    }
    assert [p["event_time"] for p in processed] == [
        "2025-09-17T12:00:00Z",
        "2025-09-17T12:02:00Z",
        "2025-09-17T12:05:00Z",
    ]
    assert result.reasons == {"malformed_row": 2, "invalid_heart_rate": 1}


def test_malformed_records_first_last_and_consecutive(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "a,b",  # 1
        "c,d,e",  # 2
        good(0),  # 3
        good(1, heart_rate="abc"),  # 4
        "x" * 10,  # 5
        "1,2,3,4,5,6,7,8,9,10",  # 6
        good(2),  # 7
        "only-one-cell",  # 8
    ]
    result, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert result.rows_input == 8
    assert reasons(rejected) == {
        1: "malformed_row",
        2: "malformed_row",
        4: "invalid_heart_rate",
        5: "malformed_row",
        6: "malformed_row",
        8: "malformed_row",
    }
    assert len(processed) == 2


def test_a_malformed_records_raw_text_is_kept(tmp_path: Path) -> None:
    text = "\n".join([HEADER, good(0), "=HYPERLINK(x),too,few"]) + "\n"
    _, _, rejected = run(tmp_path, text)
    (bad,) = rejected
    assert bad["reject_reason"] == "malformed_row"
    assert bad["raw_line"].startswith("'=HYPERLINK")  # neutralised like any other cell


def test_a_quoted_newline_is_one_record(tmp_path: Path) -> None:
    lines = [
        HEADER,
        good(0),
        '2025-09-17T12:01:00Z,"user, with comma\nand newline",70,98,100,36.8,120,80',
        good(2, heart_rate="999"),  # record 3, although it is on line 5 of the file
    ]
    result, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert result.rows_input == 3
    assert reasons(rejected) == {3: "invalid_heart_rate"}
    assert processed[1]["user_id"] == "user, with comma\nand newline"


def test_a_quoted_newline_before_a_malformed_record(tmp_path: Path) -> None:
    lines = [
        HEADER,
        '2025-09-17T12:00:00Z,"two\nlines",70,98,100,36.8,120,80',  # 1
        good(1) + ",surplus",  # 2: malformed, on line 4 of the file
        good(2, heart_rate="999"),  # 3
        good(3),  # 4
    ]
    result, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert result.rows_input == 4
    assert reasons(rejected) == {2: "malformed_row", 3: "invalid_heart_rate"}
    assert [p["event_time"][-9:] for p in processed] == ["12:00:00Z", "12:03:00Z"]


def test_extra_columns_are_kept_in_both_outputs(tmp_path: Path) -> None:
    header = "device," + HEADER + ",note"
    lines = [
        header,
        "watch-1," + good(0) + ",fine",
        "watch-2," + good(1, heart_rate="5") + ",low",
    ]
    _, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert processed[0]["device"] == "watch-1" and processed[0]["note"] == "fine"
    assert rejected[0]["device"] == "watch-2" and rejected[0]["note"] == "low"
    assert rejected[0]["heart_rate"] == "5"


FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_formula_cells_are_neutralised_in_processed_and_rejected(tmp_path: Path) -> None:
    header = HEADER + ",note"
    rows = []
    for i, formula in enumerate(FORMULAS):
        # valid rows: the formula sits in user_id and in an extra column
        rows.append([f"2025-09-17T12:{i:02d}:00Z", f"{formula}", "70", "98", "100", "36.8",
                     "120", "80", formula])  # fmt: skip
    for i, formula in enumerate(FORMULAS):
        # rejected rows: also a vital that is a formula, and a negative number
        rows.append([f"2025-09-17T13:{i:02d}:00Z", f"{formula}", formula, "98", "-5", "36.8",
                     "120", "80", formula])  # fmt: skip
    source = tmp_path / "rows.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header.split(","))
        writer.writerows(rows)
    result, processed, rejected = run(tmp_path, source.read_bytes().decode("utf-8"))
    assert result.rows_valid == len(FORMULAS)
    for rec in processed:
        assert rec["user_id"].startswith("'"), rec
        assert rec["note"].startswith("'"), rec
    assert sorted(r["note"] for r in processed) == sorted("'" + f for f in FORMULAS)
    for rec in rejected:
        assert rec["user_id"].startswith("'") and rec["note"].startswith("'"), rec
        assert rec["heart_rate"].startswith("'"), rec
        assert rec["steps"] == "-5"  # a number is not a formula
        assert rec["reject_reason"].startswith("invalid_heart_rate;invalid_steps")


def test_numbers_with_signs_are_not_touched(tmp_path: Path) -> None:
    header = HEADER + ",delta,offset"
    lines = [header, good(0) + ",-5,+3.5", good(1, heart_rate="-5") + ",-0.25,+1e3"]
    _, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert (processed[0]["delta"], processed[0]["offset"]) == ("-5", "+3.5")
    assert (rejected[0]["delta"], rejected[0]["offset"]) == ("-0.25", "+1e3")
    assert rejected[0]["heart_rate"] == "-5"


def test_a_stray_quote_near_the_start_rejects_only_its_record(tmp_path: Path) -> None:
    """DuckDB's dialect sniffer refused such a file whole; the dialect is now given."""
    lines = [
        HEADER,
        good(0),  # 1
        '2025-09-17T12:01:00Z,"bad "quote,70,98,100,36.8,120,80',  # 2: text after a quote
        good(2),  # 3
    ]
    result, processed, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert result.rows_input == 3
    assert reasons(rejected) == {2: "malformed_row"}
    assert '"bad "quote' in rejected[0]["raw_line"]
    assert [p["event_time"][-9:] for p in processed] == ["12:00:00Z", "12:02:00Z"]


def test_a_lone_malformed_record_is_rejected_not_the_file(tmp_path: Path) -> None:
    result, processed, rejected = run(tmp_path, HEADER + '\n2025-09-17T12:00:00Z,"u1"x,70\n')
    assert (result.rows_input, result.rows_valid) == (1, 0)
    assert processed == [] and reasons(rejected) == {1: "malformed_row"}


def test_a_cell_starting_with_hash_is_data_not_a_comment(tmp_path: Path) -> None:
    lines = [HEADER, "#2025-09-17T12:00:00Z,u1,70,98,100,36.8,120,80", good(1)]
    result, _, rejected = run(tmp_path, "\n".join(lines) + "\n")
    assert result.rows_input == 2
    assert reasons(rejected) == {1: "invalid_event_time"}
