"""Hostile inputs through `healthpipe run --json`, with the documented exit codes.

Exit 0 and status `processed` for files that are odd but usable (BOM, CRLF, quoted commas and
newlines, header case and spaces, shuffled and extra columns, gzip, bad cells); exit 2, status
`rejected`, a one-line error, a `rejected` manifest and the raw file kept for unusable files
(missing column, empty, header only, not UTF-8, binary, corrupt gzip). Never a traceback.
For every processed file rows.input = valid + rejected, and the processed and rejected CSVs on
disk hold exactly that many records.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthpipe.cli import app

# the outputs may hold a record of several MB (see the oversized-row test)
csv.field_size_limit(64 * 1024 * 1024)

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def good(minute: int, user: str = "u1", heart_rate: str = "70") -> str:
    return f"2025-09-17T12:{minute:02d}:00Z,{user},{heart_rate},98,100,36.8,120,80"


@dataclass
class Outcome:
    code: int
    item: dict[str, Any]
    stderr: str
    workspace: Path

    @property
    def bucket(self) -> Path:
        return self.workspace / "bucket"

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(
            (self.bucket / "manifests" / f"{self.item['dataset_id']}.json").read_text()
        )
        return doc

    def records(self, output: str) -> list[dict[str, str]]:
        key = self.manifest()["outputs"].get(output)
        if not key:
            return []
        with (self.bucket / key).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def processed(self) -> list[dict[str, str]]:
        return self.records("processed_csv")

    def rejected(self) -> list[dict[str, str]]:
        return self.records("rejected_csv")

    def reasons(self) -> dict[int, str]:
        return {int(r["source_row"]): r["reject_reason"] for r in self.rejected()}


def run_file(tmp_path: Path, name: str, content: bytes, *extra: str) -> Outcome:
    source = tmp_path / name
    source.write_bytes(content)
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        app, ["run", str(source), "--json", "--workspace", str(workspace), *extra]
    )
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    (item,) = json.loads(result.stdout)["files"]
    outcome = Outcome(result.exit_code, item, result.stderr, workspace)
    if item["status"] == "processed":
        assert result.exit_code == 0
        rows = item["rows"]
        assert rows["input"] == rows["valid"] + rows["rejected"]
        assert len(outcome.processed()) == rows["valid"]
        assert len(outcome.rejected()) == rows["rejected"]
        assert sorted(outcome.reasons()) == sorted(set(outcome.reasons()))
    return outcome


def assert_unusable(outcome: Outcome, raw_name: str, words: str) -> None:
    assert outcome.code == 2
    item = outcome.item
    assert item["status"] == "rejected"
    assert item["error"] and "\n" not in item["error"]
    assert words.lower() in item["error"].lower(), item["error"]
    assert item["report"] is None and item["email"] is None
    assert (outcome.bucket / "raw" / raw_name).is_file()  # the raw file stays
    manifest = outcome.manifest()
    assert manifest["status"] == "rejected"
    assert "\n" not in manifest["error"]["reason"]
    assert not list((outcome.workspace / "outbox").glob("*.eml"))
    assert "Traceback" not in outcome.stderr


def text(*lines: str, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode("utf-8")


# --- odd but usable ---------------------------------------------------------------------------


def test_utf8_bom(tmp_path: Path) -> None:
    out = run_file(tmp_path, "bom.csv", b"\xef\xbb\xbf" + text(HEADER, good(0), good(1)))
    assert out.item["status"] == "processed"
    assert out.item["rows"] == {"input": 2, "valid": 2, "rejected": 0}
    assert out.processed()[0]["event_time"] == "2025-09-17T12:00:00Z"


def test_crlf_line_endings(tmp_path: Path) -> None:
    content = text(HEADER, good(0), good(1, heart_rate="10"), good(2), newline="\r\n")
    out = run_file(tmp_path, "crlf.csv", content)
    assert out.item["rows"] == {"input": 3, "valid": 2, "rejected": 1}
    assert out.reasons() == {2: "invalid_heart_rate"}
    assert out.processed()[1]["diastolic_bp"] == "80"  # no stray CR


def test_quoted_fields_with_commas_and_newlines(tmp_path: Path) -> None:
    content = text(
        HEADER,
        '2025-09-17T12:00:00Z,"Smith, John",70,98,100,36.8,120,80',
        '2025-09-17T12:01:00Z,"multi\nline ""id""",70,98,100,36.8,120,80',
        good(2, heart_rate="abc"),
    )
    out = run_file(tmp_path, "quoted.csv", content)
    assert out.item["rows"] == {"input": 3, "valid": 2, "rejected": 1}
    assert [r["user_id"] for r in out.processed()] == ["Smith, John", 'multi\nline "id"']
    assert out.reasons() == {3: "invalid_heart_rate"}


def test_header_case_and_spaces_and_shuffled_columns(tmp_path: Path) -> None:
    header = " Diastolic_BP , SYSTOLIC_BP,Temp_C ,steps,  SpO2,Heart_Rate,User_Id ,EVENT_TIME"
    content = text(header, "80,120,36.8,100,98,70,u1,2025-09-17T12:00:00Z",
                   "130,120,36.8,100,98,70,u1,2025-09-17T12:01:00Z")  # fmt: skip
    out = run_file(tmp_path, "shuffled.csv", content)
    assert out.item["rows"] == {"input": 2, "valid": 1, "rejected": 1}
    (row,) = out.processed()
    assert row["event_time"] == "2025-09-17T12:00:00Z"
    assert row["heart_rate"] == "70" and row["diastolic_bp"] == "80"
    assert out.reasons() == {2: "dbp_ge_sbp"}


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    content = text(HEADER + ",device,Notes", good(0) + ",watch-7,ok", good(1, "u1", "5") + ",w,x")
    out = run_file(tmp_path, "extra.csv", content)
    assert out.processed()[0]["device"] == "watch-7"
    assert out.processed()[0]["notes"] == "ok"
    assert out.rejected()[0]["device"] == "w"
    assert "device" in out.manifest()["columns"]


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-1+cmd", "@SUM(A1)", "\tTAB", "\rCR"]


def test_formula_cells_are_neutralised_in_processed_and_rejected(tmp_path: Path) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([*HEADER.split(","), "note"])
    vitals = ["70", "98", "{steps}", "36.8", "120", "80"]
    for i, formula in enumerate(FORMULAS):
        bad = [v.format(steps="-5") for v in vitals]
        fine = [v.format(steps="5") for v in vitals]
        writer.writerow([f"2025-09-17T12:{i:02d}:00Z", formula, *bad, formula])
        writer.writerow([f"2025-09-17T13:{i:02d}:00Z", formula, *fine, "-5"])
    out = run_file(tmp_path, "formulas.csv", buffer.getvalue().encode("utf-8"))
    processed, rejected = out.processed(), out.rejected()
    assert len(processed) == len(FORMULAS) and len(rejected) == len(FORMULAS)
    for rec in rejected:  # steps -5 is invalid: the number itself stays as written
        assert rec["reject_reason"] == "invalid_steps"
        assert rec["steps"] == "-5"
        assert rec["user_id"][0] == "'" and rec["note"][0] == "'"
    for rec in processed:
        assert rec["user_id"][0] == "'"
        assert rec["note"] == "-5"
    assert sorted(r["user_id"] for r in processed) == sorted("'" + f for f in FORMULAS)


def test_formula_column_names_are_neutralised_in_both_outputs(tmp_path: Path) -> None:
    """An extra column's *name* is a cell of the output's header row, so it must not run as a
    formula when the processed or rejected CSV is opened in a spreadsheet."""
    header = HEADER + ',"=HYPERLINK(""http://evil"",""x"")",@cmd,+1,-x'
    content = text(header, good(0) + ",a,b,c,d", good(1, heart_rate="999") + ",a,b,c,d")
    out = run_file(tmp_path, "colnames.csv", content)
    for output in ("processed_csv", "rejected_csv"):
        key = out.manifest()["outputs"][output]
        with (out.bucket / key).open(newline="", encoding="utf-8") as handle:
            names = next(csv.reader(handle))
        dangerous = [n for n in names if n[:1] in ("=", "+", "-", "@", "\t", "\r")]
        # `+1` is a plain number, which a spreadsheet reads as a number: left as written
        assert dangerous == ["+1"], (output, names)
        assert [n for n in names if n != "raw_line"][-4:] == [
            '\'=hyperlink("http://evil","x")',
            "'@cmd",
            "+1",
            "'-x",
        ]


def test_script_cells_are_escaped_in_the_html_report(tmp_path: Path) -> None:
    payload = "<script>alert('x')</script>"
    lines = [HEADER]
    for minute in range(12):  # an episode of tachycardia so the user is listed
        lines.append(good(minute, user=payload, heart_rate="150"))
    lines.append(HEADER.replace("event_time", payload).replace(",", ";"))  # malformed, raw kept
    out = run_file(tmp_path, "<script>x<script>.csv", text(*lines))
    assert out.item["status"] == "processed"
    report = Path(out.item["report"]).read_text(encoding="utf-8")
    assert payload not in report
    assert "<script>x<script>" not in report
    assert "&lt;script&gt;x&lt;script&gt;.csv" in report  # the file name, shown escaped
    email = Path(out.item["email"]).read_text(encoding="utf-8", errors="replace")
    assert payload not in email


BAD_CELLS = [
    ({"heart_rate": "NaN"}, "invalid_heart_rate"),
    ({"spo2": "inf"}, "invalid_spo2"),
    ({"temp_c": "-Infinity"}, "invalid_temp_c"),
    ({"steps": "1e999"}, "invalid_steps"),
    ({"event_time": "yesterday"}, "invalid_event_time"),
    ({"event_time": "2025-02-30T10:00:00Z"}, "invalid_event_time"),
    ({"event_time": "17/09/2025 12:00"}, "invalid_event_time"),
]


def test_bad_cells_are_rejected_with_their_reason(tmp_path: Path) -> None:
    """Every bad cell of BAD_CELLS in one file (one run): each row, of its own user, is
    rejected with its own reason, and the good rows around them are processed."""
    names = HEADER.split(",")
    bad_rows = []
    for case, (cells, _) in enumerate(BAD_CELLS):
        values = dict(zip(names, good(1 + case, user=f"u{2 + case}").split(","), strict=True))
        bad_rows.append(",".join((values | cells)[n] for n in names))
    content = text(HEADER, good(0), *bad_rows, good(59))
    out = run_file(tmp_path, "cells.csv", content)
    n = len(BAD_CELLS)
    assert out.item["rows"] == {"input": n + 2, "valid": 2, "rejected": n}
    assert out.reasons() == {2 + case: reason for case, (_, reason) in enumerate(BAD_CELLS)}
    by_reason: dict[str, int] = {}
    for _, reason in BAD_CELLS:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    assert out.manifest()["counts"]["by_reason"] == by_reason


def test_duplicates(tmp_path: Path) -> None:
    content = text(
        HEADER,
        good(0),
        good(0, heart_rate="80"),
        "2025-09-17T14:00:00+02:00,u1,90,98,100,36.8,120,80",
        good(1),
    )
    out = run_file(tmp_path, "dups.csv", content)
    # other values than the first reading's (80, 90 against 70): conflicting, not duplicates
    assert out.reasons() == {2: "conflicting_reading", 3: "conflicting_reading"}
    assert out.item["rows"] == {"input": 4, "valid": 2, "rejected": 2}


def test_gzip_file(tmp_path: Path) -> None:
    raw = text(HEADER, good(0), good(1, heart_rate="x"), good(2))
    out = run_file(tmp_path, "vitals.csv.gz", gzip.compress(raw))
    assert out.item["status"] == "processed"
    assert out.item["rows"] == {"input": 3, "valid": 2, "rejected": 1}
    assert out.reasons() == {2: "invalid_heart_rate"}


def test_gzip_with_bom_crlf_quoted_header_and_quoted_newline(tmp_path: Path) -> None:
    header = ",".join(f'"{name}"' for name in HEADER.split(","))
    body = "\ufeff" + header + "\r\n"
    body += '2025-09-17T12:00:00Z,"a\r\nb",70,98,100,36.8,120,80\r\n'
    body += good(1, heart_rate="999") + "\r\n"
    out = run_file(tmp_path, "mixed.csv.gz", gzip.compress(body.encode("utf-8")))
    assert out.item["rows"] == {"input": 2, "valid": 1, "rejected": 1}
    assert out.reasons() == {2: "invalid_heart_rate"}


@pytest.mark.clock
def test_a_reading_far_in_the_future_is_rejected(tmp_path: Path) -> None:
    content = text(HEADER, "2099-01-01T00:00:00Z,u1,70,98,100,36.8,120,80", good(0))
    out = run_file(tmp_path, "future.csv", content)
    assert out.reasons() == {1: "invalid_event_time"}


@pytest.mark.parametrize("name", ["ragged.csv", "ragged.csv.gz"])
def test_malformed_rows_end_in_rejected_and_numbering_stays_right(
    tmp_path: Path, name: str
) -> None:
    content = text(
        HEADER,
        good(0),
        good(1) + ",surplus",  # 2: too many columns
        good(2, heart_rate="999"),  # 3
        "2025-09-17T12:03:00Z,u1",  # 4: too few columns
        good(4),  # 5
        good(5, heart_rate="abc"),  # 6
    )
    if name.endswith(".gz"):
        content = gzip.compress(content)
    out = run_file(tmp_path, name, content)
    assert out.item["rows"] == {"input": 6, "valid": 2, "rejected": 4}
    assert out.reasons() == {
        2: "malformed_row",
        3: "invalid_heart_rate",
        4: "malformed_row",
        6: "invalid_heart_rate",
    }
    assert out.manifest()["counts"]["by_reason"] == {"malformed_row": 2, "invalid_heart_rate": 2}


def test_one_oversized_row_does_not_sink_the_file(tmp_path: Path) -> None:
    """A single 3 MB cell (beyond DuckDB's default 2 MB line limit) is one bad record; the
    good records around it are still processed."""
    giant = "2025-09-17T12:01:00Z," + "x" * 3_000_000 + ",70,98,100,36.8,120,80"
    out = run_file(tmp_path, "giant.csv", text(HEADER, good(0), giant, good(2)))
    assert out.item["status"] == "processed", out.item["error"]
    assert out.item["rows"] == {"input": 3, "valid": 2, "rejected": 1}
    assert set(out.reasons()) == {2}


def test_only_bad_rows_is_still_processed(tmp_path: Path) -> None:
    out = run_file(tmp_path, "allbad.csv", text(HEADER, good(0, heart_rate="x"), "a,b"))
    assert out.code == 0 and out.item["status"] == "processed"
    assert out.item["rows"] == {"input": 2, "valid": 0, "rejected": 2}


# --- unusable files ---------------------------------------------------------------------------


def test_missing_required_column(tmp_path: Path) -> None:
    header = HEADER.replace(",spo2", "")
    row = "2025-09-17T12:00:00Z,u1,70,100,36.8,120,80"
    out = run_file(tmp_path, "nospo2.csv", text(header, row))
    assert_unusable(out, "nospo2.csv", "spo2")
    assert "missing" in out.item["error"]


def test_empty_file(tmp_path: Path) -> None:
    assert_unusable(run_file(tmp_path, "empty.csv", b""), "empty.csv", "empty")


def test_whitespace_only_file(tmp_path: Path) -> None:
    assert_unusable(run_file(tmp_path, "blank.csv", b"\n\r\n  \n"), "blank.csv", "empty")


def test_header_only(tmp_path: Path) -> None:
    assert_unusable(run_file(tmp_path, "header.csv", text(HEADER)), "header.csv", "no data rows")


def test_latin1_data_row(tmp_path: Path) -> None:
    content = text(HEADER, good(0)) + "2025-09-17T12:01:00Z,Jos\xe9,70,98,100,36.8,120,80\n".encode(
        "latin-1"
    )
    assert_unusable(run_file(tmp_path, "latin1.csv", content), "latin1.csv", "UTF-8")


def test_latin1_row_far_into_the_file(tmp_path: Path) -> None:
    rows = [good(i % 60, user=f"u{i}") for i in range(3000)]
    content = text(HEADER, *rows) + "2025-09-18T00:00:00Z,Jos\xe9,70,98,100,36.8,120,80\n".encode(
        "latin-1"
    )
    out = run_file(tmp_path, "late.csv", content)
    assert_unusable(out, "late.csv", "UTF-8")
    assert "3001" in out.item["error"]  # where the bad bytes are


def test_latin1_header(tmp_path: Path) -> None:
    content = (HEADER + ",r\xe9gion\n").encode("latin-1") + text(good(0) + ",x")
    assert_unusable(run_file(tmp_path, "latin1h.csv", content), "latin1h.csv", "UTF-8")


@pytest.mark.parametrize(
    ("encoding", "named"),
    [("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-32-le", "UTF-32")],
)
def test_utf16_file(tmp_path: Path, encoding: str, named: str) -> None:
    content = (HEADER + "\n" + good(0) + "\n").encode(encoding)
    out = run_file(tmp_path, "utf16.csv", content)
    assert_unusable(out, "utf16.csv", f"{named} encoded; re-export it as UTF-8")
    assert (out.bucket / "raw" / "utf16.csv").is_file()


def test_binary_file(tmp_path: Path) -> None:
    content = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    assert_unusable(run_file(tmp_path, "image.csv", content), "image.csv", "binary")


def test_corrupt_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(text(HEADER, *(good(i) for i in range(50))))
    corrupt = packed[:20] + b"\x00garbage\xff" * 8
    assert_unusable(run_file(tmp_path, "broken.csv.gz", corrupt), "broken.csv.gz", "gzip")


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(text(HEADER, *(good(i % 60, user=f"u{i}") for i in range(400))))
    out = run_file(tmp_path, "cut.csv.gz", packed[: len(packed) // 2])
    assert_unusable(out, "cut.csv.gz", "gzip")


def test_not_a_vitals_csv(tmp_path: Path) -> None:
    out = run_file(tmp_path, "other.csv", text("name,age", "ann,3"))
    assert_unusable(out, "other.csv", "header")


def test_semicolon_separated(tmp_path: Path) -> None:
    out = run_file(tmp_path, "semi.csv", text(HEADER.replace(",", ";"), good(0).replace(",", ";")))
    assert_unusable(out, "semi.csv", "column")


def test_a_file_name_cannot_inject_email_headers(tmp_path: Path) -> None:
    out = run_file(
        tmp_path, "evil\nBcc: spy@evil.test.csv", text(HEADER, good(0, heart_rate="170"))
    )
    assert out.item["status"] == "processed"
    for eml in (out.workspace / "outbox").glob("*.eml"):
        head = eml.read_text(encoding="utf-8", errors="replace").split("\n\n", 1)[0]
        header_names = [line.split(":", 1)[0].lower() for line in head.splitlines()]
        assert "bcc" not in header_names, head
