"""The record scan holds one block of the file, not the file (issue 17, memory at 10M).

The scan of a file without quotes used to memory-map the whole file: every page it read
counted in the process's resident memory, so ingest of the 10M-row uniform file (604 MB,
no quotes) peaked at 640 MB while its DuckDB work stayed under 290 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEADER = b"event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
ROW = b"2025-09-17T00:00:00Z,u1,70,98,100,36.8,120,80\n"
MB = 1024 * 1024

PROBE = """
import json, sys
from pathlib import Path
from healthpipe.dataops.record_scan import scan_records

def peak_kib():  # this process's own peak (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

before = peak_kib()
scan = scan_records(Path(sys.argv[1]), gzipped=False)
after = peak_kib()
print(json.dumps({"grew_kib": after - before, "longest": scan.longest}))
"""


def test_scanning_a_quote_free_file_does_not_hold_the_file_in_memory(tmp_path: Path) -> None:
    # GIVEN a 48 MB file without a quote (the uniform shape)
    path = tmp_path / "plain.csv"
    path.write_bytes(HEADER)
    with path.open("ab") as handle:
        handle.write(ROW * (48 * MB // len(ROW)))
    # WHEN a fresh process scans it
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True
    )
    probe = json.loads(done.stdout)
    # THEN the longest record is measured and the peak resident memory grows by far less
    # than the file (one block is read at a time)
    assert probe["longest"] == len(HEADER)
    assert probe["grew_kib"] < 8 * 1024
