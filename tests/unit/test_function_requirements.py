"""Which distributions each Lambda's zip carries (`packaging.function_requirements`), read
from the code without building: charting stays in the notifier's, so the analyzer's and the
grouped analysis's zips stay under Lambda's 250 MB (the analyzer's was 266.7 MB when analyze
imported the chart module; tests/aws/test_aws_package.py builds them)."""

from __future__ import annotations

import ast

import pytest

from healthpipe import packaging
from healthpipe.lambdas import FUNCTIONS

DRAWS_CHARTS = {"notifier"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_only_the_notifier_carries_matplotlib(function: str) -> None:
    found = {packaging.dist_name(r) for r in packaging.function_requirements(function)}
    assert ("matplotlib" in found) == (function in DRAWS_CHARTS), sorted(found)


def test_a_second_scan_of_every_function_parses_no_module_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN every function's code scanned once (`healthpipe package` scans each two or three
    # times: the wheels to download, then each zip's requirements)
    before = {f: packaging.function_requirements(f) for f in FUNCTIONS}
    parsed: list[str] = []
    real_parse = ast.parse

    def counting_parse(source: str, *args: object, **kwargs: object) -> object:
        parsed.append(source[:60])
        return real_parse(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ast, "parse", counting_parse)
    # WHEN they are scanned again THEN no unchanged module is parsed again, and the answers
    # are the same
    again = {f: packaging.function_requirements(f) for f in FUNCTIONS}
    assert parsed == []
    assert again == before
