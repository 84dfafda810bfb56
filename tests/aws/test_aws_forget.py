"""`healthpipe forget --runtime aws` on a moto server: after a run of a file, no version of
any object in the (versioned) bucket and no DynamoDB item holds the participant, the others
keep their flagged items, and the rewritten upload's `Object Created` is skipped. The
operator runs it under enforced IAM with exactly the actions docs/privacy.md lists."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import iam_enforced
import moto_env
import pytest
from test_aws_e2e import drain, keys, table_items, upload
from typer.testing import CliRunner

from healthpipe import constants as c
from healthpipe.adapters.aws.s3 import ERASURE_IAM_ACTIONS
from healthpipe.cli import app
from healthpipe.domain.identity import pseudonym

IDS = ("PT-ALPHA-0001", "PT-BRAVO-0002", "PT-CHARLIE-0003")
GONE = "PT-BRAVO-0002"
DISTINCTIVE = "39.87"  # one temperature of theirs (the others' have one decimal)
HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def _file(path: Path, day: int) -> Path:
    lines = [HEADER] + [
        f"2025-03-0{day}T10:{m:02d}:00Z,{uid},{150 + m % 2},88,0,"
        f"{DISTINCTIVE if (uid, m, day) == (GONE, 0, 1) else '39.5'},185,125"
        for uid in IDS
        for m in range(6)
    ]
    lines.append(f"2025-03-0{day}T11:00:00Z,{GONE},80,97,0,36.6,120,80,malformed")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _decoded(data: bytes, tmp: Path) -> bytes:
    """The object's bytes, plus its content where it is gzipped or Parquet."""
    if data[:2] == b"\x1f\x8b":
        return data + gzip.decompress(data)
    if data[:4] == b"PAR1":
        local = tmp / "object.parquet"
        local.write_bytes(data)
        rows = duckdb.connect().execute(f"select * from read_parquet('{local}')").fetchall()
        return data + "\n".join(map(str, rows)).encode()
    return data


def _every_version(aws: dict[str, Any], bucket: str) -> list[tuple[str, str]]:
    pages = aws["s3"].get_paginator("list_object_versions").paginate(Bucket=bucket)
    return [(v["Key"], v["VersionId"]) for page in pages for v in page.get("Versions", [])]


def documented_actions() -> list[str]:
    """The actions of docs/privacy.md's IAM section (every `service:Action` it names)."""
    text = (Path(__file__).parents[2] / "docs" / "privacy.md").read_text(encoding="utf-8")
    section = text.split("### IAM for `--runtime aws`", 1)[1].split("\n### ", 1)[0]
    return sorted(set(re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", section)))


def test_the_documented_iam_names_the_erasure_actions_of_the_s3_adapter() -> None:
    assert set(ERASURE_IAM_ACTIONS) <= set(documented_actions())


def test_forget_on_aws_leaves_no_version_or_item_with_the_participant(
    aws: dict[str, Any], stack: moto_env.Stack, tmp_path: Path, moto_endpoint: str
) -> None:
    # GIVEN a file holding the participant (one of their rows malformed), run on AWS
    upload(aws, stack, _file(tmp_path / "day1.csv", 1), "raw/day1.csv")
    assert drain(aws, stack).dead_letters == []
    secret = ""  # the stack sets no HEALTHPIPE_PSEUDONYM_SECRET
    label = pseudonym(GONE, secret)
    assert label in json.dumps(table_items(aws, stack.analyses_table))
    # WHEN an operator holding exactly the IAM docs/privacy.md lists erases them (by raw id)
    operator = iam_enforced.create_principal(
        moto_env.session().client("iam", endpoint_url=moto_endpoint),
        "erasure-operator",
        [{"Sid": "Erasure", "Effect": "Allow", "Action": documented_actions(), "Resource": "*"}],
    )
    with iam_enforced.moto_resources(), pytest.MonkeyPatch.context() as mp:
        for name, value in operator.env().items():
            mp.setenv(name, value)
        iam_enforced.set_enforcement(moto_endpoint, True)
        try:
            result = CliRunner().invoke(
                app, ["forget", GONE, "--runtime", "aws", "--apply", "--json"]
            )
        finally:
            iam_enforced.set_enforcement(moto_endpoint, False)
    # THEN the command succeeded and printed counts, never the id
    assert result.exit_code == 0, result.output
    assert GONE not in result.output
    document = json.loads(result.stdout)
    assert document["rows"]["raw"] == 7 and document["rows"]["processed_parquet"] == 6
    assert document["derived"]["old_versions_deleted"] > 0
    # AND no version of any object holds their id or their distinctive value
    for key, version in _every_version(aws, stack.bucket):
        body = aws["s3"].get_object(Bucket=stack.bucket, Key=key, VersionId=version)["Body"]
        content = _decoded(body.read(), tmp_path)
        assert GONE.encode() not in content, key
        assert DISTINCTIVE.encode() not in content, key
    # AND no DynamoDB item names them; the others keep their flagged items
    dumped = json.dumps([table_items(aws, t) for t in (stack.analyses_table, stack.ledger_table)])
    assert GONE not in dumped and label not in dumped
    for other in set(IDS) - {GONE}:
        assert f"USER#{pseudonym(other, secret)}" in dumped
    # AND the erasure record is in the bucket, by pseudonym
    (record,) = keys(aws, stack.bucket, "erasures/")
    assert label in record
    # AND the rewritten upload's "Object Created" event is skipped, not ingested anew
    assert drain(aws, stack).dead_letters == []
    assert len(keys(aws, stack.bucket, c.MANIFESTS_PREFIX)) == 1
