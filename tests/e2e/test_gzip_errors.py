"""Issue 15: a `.gz` file that is not gzip, or whose compressed data is damaged, is reported
as such (one line, exit 2, a code in the manifest), never as "no vitals header"."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.domain.identity import manifest_key

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"
ROWS = "".join(f"2025-06-03T10:{i % 60:02d}:00Z,u{i},70,98,10,36.8,115,75\n" for i in range(400))
PACKED = gzip.compress((HEADER + "\n" + ROWS).encode())


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        # text saved under a .gz name
        (b"some notes, not data\nsecond line\n", "not_gzip", "not a gzip file"),
        # the header of a CSV, uncompressed, under a .gz name
        ((HEADER + "\n").encode(), "not_gzip", "not a gzip file"),
        # gzip whose first bytes after the magic are damaged
        (PACKED[:20] + b"\x00garbage\xff" * 8, "corrupt_gzip", "corrupt gzip file"),
        # a download cut in half
        (PACKED[: len(PACKED) // 2], "corrupt_gzip", "corrupt gzip file"),
    ],
    ids=["text", "plain-csv", "damaged", "truncated"],
)
def test_a_bad_gz_file_is_named_as_such(
    tmp_path: Path, content: bytes, code: str, words: str
) -> None:
    source = tmp_path / "vitals.csv.gz"
    source.write_bytes(content)
    workspace = tmp_path / "ws"
    # WHEN it is run as a user would
    plain = CliRunner().invoke(app, ["run", str(source), "--workspace", str(workspace)])
    # THEN one line on stderr names the gzip problem, exit 2, no log line before it
    assert plain.exit_code == 2, plain.output
    lines = [line for line in plain.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, plain.stderr
    assert words in lines[0] and "header" not in lines[0]
    # AND the manifest records the code
    result = CliRunner().invoke(
        app, ["run", str(source), "--json", "--workspace", str(tmp_path / "ws2")]
    )
    assert result.exit_code == 2
    (item,) = json.loads(result.stdout)["files"]
    assert item["status"] == "rejected" and words in item["error"]
    manifest_file = tmp_path / "ws2" / "bucket" / manifest_key(item["dataset_id"])
    assert json.loads(manifest_file.read_text())["error"]["code"] == code
