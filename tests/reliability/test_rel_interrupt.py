"""Ctrl-C during a run: it stops, says so in one line, and the same command finishes it.

GIVEN a `healthpipe run` in a process group of its own (as a shell starts a command)
WHEN Ctrl-C reaches the group: 20 ms into a DuckDB statement of ingest (single path), or
while the chunked engine's workers stage the chunks
THEN the run ends with exit 130 and one line on stderr, no traceback (before: DuckDB turned
the SIGINT into an error of its own, the dispatcher counted a stage failure and retried, and
the run carried on to the end with exit 0; every idle worker printed a traceback), no process
of it is left, the delivery is due again with the attempt not counted and no stage failure
is counted; and the same command run again says `processed` (it resumed the stopped run:
before, it said `skipped` and no email) with every row in exactly one output, and the same
file given twice is `skipped` the second time (before: `processed` and `resumed` twice).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
from rel_helpers import assert_exactly_once, db_rows, make_input, run_cli, run_in_process
from test_rel_workers import GRACE_SECONDS, chunked_input, left_after

from healthpipe.commands.output import EXIT_INTERRUPTED, INTERRUPTED
from healthpipe.orchestration.runs import RESUMED

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the run's processes in /proc"
)

MAP_STARTS = "healthpipe.dataops.chunked.local:_run_all"
CASES = {
    "ingest-mid-duckdb": (
        ["--interrupt-duckdb", "healthpipe.dataops.validation.file", "--nth", "6"],
        400,
        "",
    ),
    "chunked-map-on-two-workers": (
        ["--interrupt", MAP_STARTS, "--nth", "1", "--delay", "0.3"],
        40_000,
        "chunked_threshold_mb = 0\nchunk_mb = 1\n",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ctrl_c_stops_the_run_and_the_same_command_finishes_it(tmp_path: Path, case: str) -> None:
    press, rows, settings = CASES[case]
    here, source, config, workspace = chunked_input(tmp_path, rows, settings)
    # the file twice: the rerun's second entry is content this command has just processed
    args = ["run", str(source), str(source), "-w", str(workspace), "--workers", "2"]
    args += ["--config", str(config)]

    stopped = run_cli([*args, "--json"], workspace, crash=press)

    assert stopped.returncode == EXIT_INTERRUPTED, (stopped.returncode, stopped.stderr[-2000:])
    assert stopped.stderr.strip() == f"error: {INTERRUPTED}", stopped.stderr[-3000:]
    assert stopped.stdout == ""
    assert left_after(here.resolve(), GRACE_SECONDS) == []
    assert db_rows(workspace, "SELECT target, status, attempts, last_error FROM deliveries") == [
        ("ingest", "pending", 0, "interrupted")
    ]
    assert db_rows(workspace, "SELECT count(*) FROM ledger WHERE status = 'in_progress'") == [(0,)]
    failures = "SELECT count(*) FROM metrics WHERE name = 'StageFailures'"
    assert db_rows(workspace, failures) == [(0,)]

    rerun = run_in_process([*args, "--json"], workspace)

    assert rerun.returncode == 0, rerun.stdout
    outcome, again = json.loads(rerun.stdout)["files"]
    assert (outcome["status"], outcome["note"]) == ("processed", RESUMED)
    assert outcome["email"] and Path(outcome["email"]).is_file()
    assert (again["status"], again["email"]) == ("skipped", None), again
    assert again["note"].startswith("skipped: same content already processed")
    assert_exactly_once(workspace, source)


def test_the_same_file_twice_in_one_command_is_skipped_the_second_time(tmp_path: Path) -> None:
    # what `resumed` must not swallow: a second upload of content this command processed
    source = make_input(tmp_path / "vitals.csv", rows=200)
    workspace = tmp_path / "ws"

    result = run_in_process(
        ["run", str(source), str(source), "-w", str(workspace), "--json"], workspace
    )

    statuses = [f["status"] for f in json.loads(result.stdout)["files"]]
    assert statuses == ["processed", "skipped"]


def test_sigint_is_what_the_helpers_send() -> None:
    assert signal.SIGINT + 128 == EXIT_INTERRUPTED
