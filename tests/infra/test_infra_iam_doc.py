"""docs/deploy.md's permissions table is the one the resolved Terraform statements give
(`python tests/infra/iam_policy.py` prints it): the doc cannot drift from the policy."""

from __future__ import annotations

import re

from iam_policy import render_table
from infra_terraform import ROOT, load_module

from healthpipe.lambdas import FUNCTIONS


def test_the_deploy_guide_s_permissions_table_equals_the_resolved_statements() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"<!-- iam-table:start -->\n(.*?)\n<!-- iam-table:end -->", text, re.S)
    assert match, "docs/deploy.md has no iam-table markers"
    assert match.group(1).strip() == render_table(load_module()), (
        "regenerate with: .venv/bin/python tests/infra/iam_policy.py"
    )


def test_the_table_has_a_row_per_statement_of_every_function() -> None:
    table = render_table(load_module())
    rows = [line for line in table.splitlines()[2:]]
    functions = {row.split("|")[1].strip() for row in rows}
    assert functions == set(FUNCTIONS)
    assert any("ListDataBucket" in row and "s3:prefix" in row for row in rows)
    notifier = [row for row in rows if row.startswith("| notifier |")]
    assert not any("BatchWriteItem" in row for row in notifier)
