"""Fixtures for the analyst tests: real briefs from the real ingest + analyze stages."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.domain.brief import NOT_ASSESSABLE, build_brief
from healthpipe.domain.documents import Analysis, Brief
from healthpipe.orchestration.runs import run_files

_ANALYSES: dict[str, dict[str, Any]] = {}


def analyze_file(source: Path, workspace: Path) -> dict[str, Any]:
    """Run the local pipeline (builtin analyst) on `source`; return its analysis JSON."""
    key = str(source.resolve())
    if key not in _ANALYSES:
        settings = load_settings({"workspace": workspace, "analyst": "builtin"})
        runtime = build_local(settings)
        try:
            (outcome,) = run_files(runtime, [source])
            assert outcome.status == "processed", outcome.error
            analysis_file = settings.bucket_dir / "analyzed" / f"{outcome.dataset_id}.json"
            _ANALYSES[key] = json.loads(analysis_file.read_text())
        finally:
            runtime.close()
    return _ANALYSES[key]


def as_brief(brief: dict[str, Any]) -> Brief:
    """The typed `Brief` of a brief in its JSON shape (what analysts take); a test's partial
    brief gets the two required parts: an assessment (assessable when it has readings, as
    the analysts assumed of a brief without one) and an empty data quality."""
    readings = int(brief.get("readings", 0))
    status = "assessed" if readings > 0 else NOT_ASSESSABLE
    required = {"assessment": {"assessable": readings > 0, "status": status}, "data_quality": {}}
    return Brief.model_validate({**required, **brief})


def brief_of(analysis: dict[str, Any]) -> dict[str, Any]:
    typed = Analysis.model_validate(analysis)
    return build_brief(typed.facts(), typed.data_quality).as_json()


def user_ids_in(source: Path) -> set[str]:
    with source.open(newline="") as handle:
        return {row["user_id"] for row in csv.DictReader(handle) if row.get("user_id")}


@pytest.fixture
def analyzed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], dict[str, Any]]:
    def run(source: Path) -> dict[str, Any]:
        return analyze_file(source, tmp_path_factory.mktemp("ws"))

    return run


@pytest.fixture
def seed_briefs(
    seed_dir: Path, analyzed: Callable[[Path], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The brief of each seed sample file (name -> brief)."""
    return {p.name: brief_of(analyzed(p)) for p in sorted(seed_dir.glob("*.csv"))}


@pytest.fixture
def seed_brief(seed_briefs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return seed_briefs["sample_data.csv"]


@pytest.fixture
def synthetic_brief(
    tmp_path_factory: pytest.TempPathFactory, analyzed: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """The brief of a generated 2,000-row file (no dependency on ../shared)."""
    from healthpipe.synthetic import SyntheticSpec, generate_csv

    cached = [k for k in _ANALYSES if Path(k).name == "synthetic-2000.csv"]
    if cached:
        return brief_of(_ANALYSES[cached[0]])
    source = tmp_path_factory.mktemp("data") / "synthetic-2000.csv"
    generate_csv(SyntheticSpec(rows=2000, users=12, seed=5), source)
    return brief_of(analyzed(source))


def grounded_answer(brief: dict[str, Any]) -> dict[str, Any]:
    """What a well-behaved model answers: every number copied from the brief."""
    anomalies = brief["anomalies"]
    shares = brief["shares_pct"]
    top = brief["participants_at_risk"][0]
    return {
        "insights": [
            f"{anomalies['readings_flagged']} of {brief['readings']} readings "
            f"({shares['readings_flagged']}%) had at least one finding.",
            f"{anomalies['by_severity'].get('high', 0)} findings were high severity.",
            f"{top['participant']} had the highest risk score, {top['risk_score']}.",
        ],
        "recommendations": [
            f"Review {top['participant']} first.",
            "Check device placement for participants with low SpO2 readings.",
        ],
        "summary": f"{brief['participants']} participants contributed {brief['readings']} "
        "valid readings.",
        "risk_level": "high",
    }


@pytest.fixture
def good_answer(synthetic_brief: dict[str, Any]) -> dict[str, Any]:
    return grounded_answer(synthetic_brief)
