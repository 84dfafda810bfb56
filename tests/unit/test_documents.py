"""Typed documents load what today's main wrote and write it back byte for byte.

The fixtures in tests/fixtures/documents/ were written by main at 921c729 (before the models
existed): see tests/fixtures/documents/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthpipe.adapters.aws.analysis_store import compact
from healthpipe.adapters.local.object_store import FolderObjectStore
from healthpipe.domain.brief import build_brief
from healthpipe.domain.documents import (
    Analysis,
    AnalysisComplete,
    AnalysisSummary,
    Brief,
    FlaggedEpisode,
    FlaggedUser,
    Manifest,
    ProcessingComplete,
    ProcessingFailed,
    flagged_item,
)
from healthpipe.errors import PermanentError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"


def fixtures(pattern: str) -> list[Path]:
    found = sorted(FIXTURES.glob(pattern))
    assert found, pattern
    return found


@pytest.mark.parametrize("path", fixtures("manifest-*.json"), ids=lambda p: p.name)
def test_manifest_written_by_old_main_round_trips_byte_for_byte(path: Path) -> None:
    text = path.read_text()
    manifest = Manifest.model_validate_json(text)
    assert manifest.dumps(indent=2) == text
    assert manifest.source.key.startswith("raw/")


def test_rejected_manifest_has_its_error_and_no_outputs() -> None:
    (path,) = fixtures("manifest-1e5b08b8e0b59d16.json")
    manifest = Manifest.model_validate_json(path.read_text())
    assert manifest.status == "rejected"
    assert manifest.error is not None and manifest.error.code == "missing_columns"
    assert manifest.outputs.rejected_csv is None and manifest.columns is None


@pytest.mark.parametrize("path", fixtures("analysis-*.json"), ids=lambda p: p.name)
def test_analysis_written_by_old_main_round_trips_byte_for_byte(path: Path) -> None:
    text = path.read_text()
    analysis = Analysis.model_validate_json(text)
    assert analysis.dumps(indent=1, default=str) == text
    # typed all the way down: no part of it is left a plain dict
    assert analysis.anomalies.total == sum(analysis.anomalies.by_severity.values())
    assert all(f.user_id for f in analysis.anomalies.top)
    assert analysis.keys.analysis == f"analyzed/{analysis.dataset_id}.json"


def test_analysis_keeps_whole_and_fractional_numbers_as_written() -> None:
    (path,) = fixtures("analysis-aa623bb9644e2e31.json")
    analysis = Analysis.model_validate_json(path.read_text())
    finding = analysis.high_participants.items[0].findings[0]  # type: ignore[union-attr]
    assert isinstance(finding.value, int)  # written as 300, not 300.0
    assert isinstance(analysis.anomalies.top[0].value, float)  # written as 172.0


@pytest.mark.parametrize("path", fixtures("summary-sqlite-*.json"), ids=lambda p: p.name)
def test_sqlite_summary_written_by_old_main_round_trips(path: Path) -> None:
    text = path.read_text()
    summary = AnalysisSummary.model_validate_json(text)
    assert summary.dumps(default=str) == text


@pytest.mark.parametrize("path", fixtures("summary-dynamodb-*.json"), ids=lambda p: p.name)
def test_dynamodb_summary_written_by_old_main_round_trips(path: Path) -> None:
    text = path.read_text()
    summary = AnalysisSummary.model_validate_json(text)
    assert compact(summary.as_json()) == text


def test_trimmed_dynamodb_summary_says_so_and_still_loads() -> None:
    (path,) = fixtures("summary-dynamodb-trimmed-*.json")
    summary = AnalysisSummary.model_validate_json(path.read_text())
    assert summary.trimmed is True
    assert summary.rows.valid == 951 and summary.worst_severity == "high"


@pytest.mark.parametrize("path", fixtures("flagged-*.jsonl"), ids=lambda p: p.name)
def test_flagged_items_written_by_old_main_round_trip(path: Path) -> None:
    lines = path.read_text().splitlines()
    dumps = compact if "dynamodb" in path.name else (lambda doc: json.dumps(doc, default=str))
    kinds = set()
    for line in lines:
        item = flagged_item(json.loads(line))
        kinds.add(type(item))
        assert dumps(item.as_json()) == line
    assert kinds == {FlaggedUser, FlaggedEpisode}


@pytest.mark.parametrize("path", fixtures("brief-*.json"), ids=lambda p: p.name)
def test_brief_built_from_the_typed_analysis_is_the_one_old_main_built(path: Path) -> None:
    # GIVEN an analysis written by old main, and the brief old main built from it
    dataset_id = path.stem.removeprefix("brief-")
    analysis = Analysis.model_validate_json((FIXTURES / f"analysis-{dataset_id}.json").read_text())
    # WHEN the typed brief is built from its facts
    brief = build_brief(analysis.facts(), analysis.data_quality)
    # THEN its JSON (what an analyst reads) is byte for byte the old one
    assert brief.dumps(indent=1) == path.read_text()
    assert Brief.model_validate_json(path.read_text()).dumps(indent=1) == path.read_text()


EVENT_MODELS = {
    "Data Processing Complete": ProcessingComplete,
    "Data Processing Failed": ProcessingFailed,
    "Data Analysis Complete": AnalysisComplete,
}


def test_event_details_written_by_old_main_round_trip() -> None:
    # GIVEN the details old main's stages put in the local outbox (one of each kind at least)
    lines = (FIXTURES / "events-sqlite-outbox.jsonl").read_text().splitlines()
    seen = set()
    for line in lines:
        stored = json.loads(line)
        model = EVENT_MODELS[stored["detail-type"]]
        # WHEN read into its model THEN written back it is the same JSON
        detail = model.model_validate_json(stored["detail"])
        assert json.dumps(detail.as_json(), default=str) == stored["detail"]
        seen.add(model)
    assert seen == set(EVENT_MODELS.values())


def test_a_document_that_is_not_a_manifest_fails_permanently_without_its_values(
    tmp_path: Path,
) -> None:
    # GIVEN a stored "manifest" with no source and a participant id in it
    store = FolderObjectStore(tmp_path)
    store.put_bytes("manifests/x.json", json.dumps({"counts": {"input": "user_42"}}).encode())
    # WHEN it is read as a Manifest, THEN no retry is asked for and no value is quoted
    with pytest.raises(PermanentError) as raised:
        store.get_document("manifests/x.json", Manifest)
    assert "manifests/x.json" in str(raised.value) and "user_42" not in str(raised.value)


def test_put_document_writes_the_bytes_get_document_reads(tmp_path: Path) -> None:
    (path,) = fixtures("manifest-aa623bb9644e2e31.json")
    store = FolderObjectStore(tmp_path)
    manifest = Manifest.model_validate_json(path.read_text())
    store.put_document("manifests/m.json", manifest, indent=2)
    assert store.get_bytes("manifests/m.json").decode() == path.read_text()
    assert store.get_document("manifests/m.json", Manifest) == manifest
