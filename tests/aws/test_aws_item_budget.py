"""Trimming documents under DynamoDB's item size: always terminates, keeps the shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthpipe.adapters.aws.item_budget import fit, size_of

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=400),
    lambda children: (
        st.lists(children, max_size=30)
        | st.dictionaries(st.text(max_size=8), children, max_size=30)
    ),
    max_leaves=200,
)


def test_a_document_that_fits_is_returned_as_is() -> None:
    doc = {"dataset_id": "d", "rows": {"input": 3}}
    assert fit(doc, 1000) is doc


def test_lists_maps_and_strings_are_cut_down_to_the_budget() -> None:
    doc = {
        "dataset_id": "d",
        "top": [{"n": n} for n in range(10_000)],
        "reasons": {f"r{n}": n for n in range(2000)},
        "summary": "x" * 100_000,
    }
    trimmed = fit(doc, 4096)
    assert size_of(trimmed) <= 4096
    assert trimmed["_trimmed"] is True and trimmed["dataset_id"] == "d"
    assert trimmed["top"][0] == {"n": 0}  # the first entries are kept
    assert "_trimmed" not in doc  # the input is not changed


def test_top_level_fields_are_dropped_last_and_named() -> None:
    trimmed = fit({"dataset_id": "d", **{f"k{n}": n * 1000 for n in range(500)}}, 200)
    assert size_of(trimmed) <= 200
    assert trimmed["dataset_id"] == "d" and trimmed["_dropped"]


def test_a_document_whose_kept_fields_are_too_big_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be trimmed"):
        fit({"dataset_id": "d" * 60, "kind": "k" * 60}, 100)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_fit_terminates_and_respects_the_budget(value: object) -> None:
    doc = {"dataset_id": "d", "payload": value}
    trimmed = fit(doc, 512)
    assert size_of(trimmed) <= 512
    assert trimmed["dataset_id"] == "d"
