"""`healthpipe forget` (issue 18, Deliver 5): after erasure no stored byte holds the
participant's id or their distinctive reading, and the other participants' results are
unchanged. One workspace for the module: three generated files, the participant in two of
them (one gzipped), with a rejected row and a malformed row of theirs."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("cli_forget")

PID = "pt-7f3a-erase"  # replaces user_003 in days 1 and 2
DISTINCTIVE = "38.47"  # their temperature in one reading (the generator writes one decimal)
DATA_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)  # as tests/conftest.py
# the other participants' readings: how many, and a digest of every value of every row
OTHERS_READINGS = (
    "select count(*), sum(hash(dataset_id, source_row, event_time, event_time_text, user_id, "
    "heart_rate, spo2, steps, temp_c, systolic_bp, diastolic_bp))::varchar from readings "
    f"where user_id <> '{PID}'"
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _make_files(tmp: Path) -> list[Path]:
    files = []
    for day in (1, 2, 3):
        out = tmp / f"day{day}.csv"
        result = invoke(
            "generate", "--rows", "150", "--users", "5", "--seed", str(day),
            "--end", f"2025-06-0{day}T12:00:00", "--out", str(out),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        files.append(out)
    day1, day2, _ = files
    lines = day1.read_text(encoding="utf-8").replace("user_003", PID).splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if PID in line)
    cells = lines[first].rstrip("\n").split(",")
    cells[2], cells[5] = "187", DISTINCTIVE  # heart_rate, temp_c
    lines[first] = ",".join(cells) + "\n"
    lines.append(f"2025-06-01T11:59:00Z,{PID},80,150,10,36.6,120,80\n")  # spo2 out of range
    day1.write_text("".join(lines), encoding="utf-8")
    text = day2.read_text(encoding="utf-8").replace("user_003", PID)
    text += f"2025-06-02T11:59:00Z,{PID},80,97,10,36.6,120,80,extra,cells\n"  # malformed
    gz = tmp / "day2.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    day2.unlink()
    return [day1, gz, files[2]]


def _query(ws: Path, sql: str) -> list[list[Any]]:
    result = invoke("query", sql, "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    rows: list[list[Any]] = json.loads(result.stdout)["rows"]
    return rows


def _processed_csvs(ws: Path) -> dict[str, bytes]:
    root = ws / "bucket" / "processed" / "csv"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import healthpipe.stages.ingest as ingest

    tmp = tmp_path_factory.mktemp("forget")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HEALTHPIPE_"):
                mp.delenv(name)
        mp.chdir(tmp)
        mp.setattr(ingest, "utc_now", lambda: max(datetime.now(UTC), DATA_NOT_BEFORE))
        files = _make_files(tmp)
        ws = tmp / "ws"
        ran = invoke("run", *map(str, files), "-w", str(ws), "--json")
        assert ran.exit_code == 0, ran.output
        state: dict[str, Any] = {"ws": ws, "files": files}
        state["csv_before"] = _processed_csvs(ws)
        state["readings_before"] = _query(ws, "select count(*) from readings")[0][0]
        state["theirs"] = _query(ws, f"select count(*) from readings where user_id = '{PID}'")[0][0]
        state["others_before"] = _query(ws, OTHERS_READINGS)
        state["findings_before"] = _query(
            ws, "select user_id, metric, kind, count(*) from findings group by all order by all"
        )
        label = invoke("pseudonym", PID, "-w", str(ws))
        state["pseudonym"] = label.stdout.strip()
        page = invoke("history", PID, "-w", str(ws))  # their page under reports/history/
        assert page.exit_code == 0, page.output
        state["before_hits"] = list(stored_hits(ws, state["pseudonym"]))
        fingerprint = _fingerprint(ws)
        state["dry_run"] = invoke("forget", PID, "-w", str(ws), "--json")
        state["dry_run_changed_nothing"] = _fingerprint(ws) == fingerprint
        state["applied"] = invoke("forget", state["pseudonym"], "-w", str(ws), "--apply", "--json")
        yield state


def _fingerprint(ws: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in ws.rglob("*")
        if p.is_file() and p.suffix not in {".db", ".db-wal", ".db-shm"}
    }


def _texts(path: Path) -> Iterator[bytes]:
    """The file's bytes, and its decoded content where it is compressed or structured."""
    data = path.read_bytes()
    yield data
    if data[:2] == b"\x1f\x8b":
        yield gzip.decompress(data)
    if data[:4] == b"PAR1":
        con = duckdb.connect()
        rows = con.execute(f"select * from read_parquet('{path}')").fetchall()
        yield "\n".join(",".join(map(str, row)) for row in rows).encode()
    if data[:16] == b"SQLite format 3\x00":
        con3 = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = [r[0] for r in con3.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con3.execute(f'select * from "{table}"'):
                yield ",".join(map(str, row)).encode()
        con3.close()


def stored_hits(ws: Path, *extra: str) -> Iterator[tuple[str, str]]:
    """(file, what) for every file under the workspace that holds the id, the value or one
    of `extra`."""
    for path in sorted(ws.rglob("*")):
        if not path.is_file():
            continue
        for text in _texts(path):
            for what in (PID, DISTINCTIVE, *extra):
                if what.encode() in text:
                    yield str(path.relative_to(ws)), what


def _places(hits: list[tuple[str, str]], what: str) -> set[str]:
    """The top folders (under bucket/ the prefix) of the files that hold `what`."""
    parts = [name.split("/") for name, found in hits if found == what]
    return {p[1] if p[0] == "bucket" and len(p) > 1 else p[0] for p in parts}


def test_before_erasure_the_search_finds_them_in_every_kind_of_copy(
    erased: dict[str, Any],
) -> None:
    hits = erased["before_hits"]
    assert {"raw", "processed", "rejected", "analyzed", "lake"} <= _places(hits, PID)
    assert {"raw", "processed", "analyzed", "lake"} <= _places(hits, DISTINCTIVE)
    # reports, emails and the database name participants by pseudonym only
    assert {"reports", "outbox", "healthpipe.db"} <= _places(hits, erased["pseudonym"])
    assert any(name.startswith("bucket/reports/history/") for name, _ in hits)
    assert erased["theirs"] > 20


def test_dry_run_counts_without_naming_them_and_changes_nothing(erased: dict[str, Any]) -> None:
    result = erased["dry_run"]
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["applied"] is False
    assert document["pseudonym"] == erased["pseudonym"]
    assert document["rows"]["processed_parquet"] == erased["theirs"]
    assert document["rows"]["lake"] == erased["theirs"]  # analyze's copy, one bucket read
    assert document["rows"]["rejected"] == 2  # the out-of-range row and the malformed one
    assert document["files"]["raw"] == 2 and document["datasets"] == 2
    assert PID not in result.output and DISTINCTIVE not in result.output
    assert erased["dry_run_changed_nothing"]


def test_after_forget_no_stored_byte_holds_their_id_or_value(erased: dict[str, Any]) -> None:
    result = erased["applied"]
    assert result.exit_code == 0, result.output
    assert PID not in result.output
    hits = list(stored_hits(erased["ws"], erased["pseudonym"]))
    assert [hit for hit in hits if hit[1] != erased["pseudonym"]] == []
    # the pseudonym stays in the erasure record only
    assert _places(hits, erased["pseudonym"]) == {"erasures"}
    assert _query(erased["ws"], "select count(*) from readings where heart_rate = 187") == [[0]]


def test_other_participants_rows_are_byte_identical_and_counts_drop_by_theirs(
    erased: dict[str, Any],
) -> None:
    ws = erased["ws"]
    after = _processed_csvs(ws)
    assert after.keys() == erased["csv_before"].keys()
    for name, before in erased["csv_before"].items():
        kept = b"".join(
            line for line in before.splitlines(keepends=True) if PID.encode() not in line
        )
        assert after[name] == kept
    assert _query(ws, OTHERS_READINGS) == erased["others_before"]
    readings = _query(ws, "select count(*) from readings")[0][0]
    assert readings == erased["readings_before"] - erased["theirs"]
    others = [row for row in erased["findings_before"] if row[0] != PID]
    assert (
        _query(ws, "select user_id, metric, kind, count(*) from findings group by all order by all")
        == others
    )


def test_the_erasure_record_names_the_pseudonym_and_counts(erased: dict[str, Any]) -> None:
    (record,) = (erased["ws"] / "bucket" / "erasures").glob("*.json")
    assert erased["pseudonym"] in record.name
    document = json.loads(record.read_text(encoding="utf-8"))
    assert document["pseudonym"] == erased["pseudonym"]
    assert document["rows_removed"]["processed_parquet"] == erased["theirs"]
    assert document["derived"]["analyses_redone"] == 2
    assert document["derived"]["history_days_erased"] >= 2  # a day in each of two files
    bucket = erased["ws"] / "bucket"
    for dataset_id in document["datasets"]:  # the manifests count what the files now hold
        manifest = json.loads((bucket / "manifests" / f"{dataset_id}.json").read_text())
        counts, outputs = manifest["counts"], manifest["outputs"]
        assert manifest["erasures"] == 1
        assert counts["valid"] == _csv_rows(bucket / outputs["processed_csv"])
        assert counts["rejected"] == _csv_rows(bucket / outputs["rejected_csv"])
        assert counts["input"] == counts["valid"] + counts["rejected"]


def _csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def test_the_original_upload_is_still_recognised_and_its_rewrite_is_not_ingested(
    erased: dict[str, Any],
) -> None:
    ws, files = erased["ws"], erased["files"]
    original = hashlib.sha256(files[0].read_bytes()).hexdigest()
    con = sqlite3.connect(f"file:{ws / 'healthpipe.db'}?mode=ro", uri=True)
    (status,) = con.execute("select status from ledger where key = ?", (f"ingest:{original}",))
    con.close()
    assert status == ("completed",)
    rewritten = ws / "bucket" / "raw" / files[0].name
    result = invoke("run", str(rewritten), "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    assert [f["status"] for f in json.loads(result.stdout)["files"]] == ["skipped"]


@pytest.mark.parametrize(
    ("participant", "workspace", "message"),
    [
        ("P-0000000000000000", "ws", "no participant of the processed readings has"),
        (PID, "nowhere", "no workspace at"),
    ],
)
def test_an_unknown_pseudonym_or_no_workspace_is_one_line_and_exit_2(
    erased: dict[str, Any], participant: str, workspace: str, message: str
) -> None:
    ws = erased["ws"] if workspace == "ws" else erased["ws"].parent / workspace
    result = invoke("forget", participant, "-w", str(ws), "--apply")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert PID not in result.output
