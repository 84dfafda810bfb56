"""Which distributions each Lambda's zip carries (`packaging.function_requirements`), read
from the code without building: charting stays in the notifier's, so the analyzer's and the
grouped analysis's zips stay under Lambda's 250 MB (the analyzer's was 266.7 MB when analyze
imported the chart module; tests/aws/test_aws_package.py builds them)."""

from __future__ import annotations

import pytest

from healthpipe import packaging
from healthpipe.lambdas import FUNCTIONS

DRAWS_CHARTS = {"notifier"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_only_the_notifier_carries_matplotlib(function: str) -> None:
    found = {packaging.dist_name(r) for r in packaging.function_requirements(function)}
    assert ("matplotlib" in found) == (function in DRAWS_CHARTS), sorted(found)
