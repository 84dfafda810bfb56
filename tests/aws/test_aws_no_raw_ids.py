"""On AWS too, the analyses table holds participants by pseudonym only: every DynamoDB item of
every table is searched for the input's participant ids after a whole run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import moto_env
from test_aws_e2e import drain, table_items, upload

IDS = ("PT-ALPHA-0001", "PT-BRAVO-0002", "PT-CHARLIE-0003")
HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def test_no_dynamodb_item_holds_a_raw_participant_id(
    aws: dict[str, Any], stack: moto_env.Stack, tmp_path: Path
) -> None:
    # GIVEN a file whose every participant has findings and episodes, run end to end
    lines = [HEADER] + [
        f"2020-03-01T10:{m:02d}:00Z,{uid},{150 + m % 2},88,0,39.5,185,125"
        for uid in IDS
        for m in range(6)
    ]
    source = tmp_path / "vitals.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    upload(aws, stack, source, "raw/vitals.csv")
    drained = drain(aws, stack)
    assert drained.dead_letters == []
    # WHEN every item of every table is read
    dumped = json.dumps([table_items(aws, t) for t in (stack.analyses_table, stack.ledger_table)])
    # THEN no raw id is stored, and the flagged items carry 64-bit pseudonyms
    for uid in IDS:
        assert uid not in dumped
    assert len(set(re.findall(r"USER#P-[0-9a-f]{16}", dumped))) == len(IDS)
