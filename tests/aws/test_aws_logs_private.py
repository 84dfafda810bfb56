"""No user id or vital value appears in the handlers' INFO logs."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import moto_env
import pytest
from lambda_harness import HANDLERS, user_ids


def raw_values(path: Path) -> set[str]:
    """Distinctive raw values: every reading's timestamp and every full data line."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    values = {row[0] for row in rows[1:] if row and len(row[0]) >= 10}
    values |= {",".join(row) for row in rows[1:] if len(row) > 3}
    return values


def test_handler_logs_carry_ids_and_counts_only(
    aws: dict[str, Any],
    stack: moto_env.Stack,
    sample_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the sample file runs through the three handlers (logs go to stdout as on Lambda)
    aws["s3"].upload_file(str(sample_file), stack.bucket, "raw/sample_data.csv")
    for _ in range(5):
        for function, module in HANDLERS.items():
            for event in moto_env.receive(aws["sqs"], stack.queues[function]):
                module.handler(event, None)
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    # THEN the logs show the run (so the scan below reads real output)
    for message in ('"message":"ingested"', '"message":"analyzed"', '"message":"report done"'):
        assert message in logs
    assert '"correlation_id":"healthpipe-data-' in logs
    # AND no user id (whole word: user_1 must not match inside user_10) and no raw value
    ids = user_ids(sample_file)
    assert len(ids) >= 5
    leaked = sorted(uid for uid in ids if re.search(rf"(?<![\w-]){re.escape(uid)}(?![\w-])", logs))
    assert leaked == []
    assert [value for value in raw_values(sample_file) if value in logs] == []
