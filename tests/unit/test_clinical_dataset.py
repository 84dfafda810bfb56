"""The analysis of a real file, recomputed in Python: on both seed sample files, the anomaly
counts (NEWS2, ACC/AHA, baseline) and the number of episodes the SQL analysis reports equal
what the domain's Python functions give on the same processed readings."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import BASELINE_METRICS
from support import twins as tw
from support.twins import partial_news2


def processed_readings(bucket: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    parquet = bucket / manifest["outputs"]["processed_parquet"]
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        cur = con.execute(f"SELECT * FROM read_parquet('{parquet}') ORDER BY source_row")
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def _epoch(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def python_analysis(readings: list[dict[str, Any]]) -> dict[str, Any]:
    """The analysis recomputed with the domain's Python functions (the "Python twin")."""
    by_rule: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    flagged_rows: set[int] = set()
    users: dict[str, list[dict[str, Any]]] = {}
    for r in readings:
        users.setdefault(r["user_id"], []).append(r)
    episodes = 0
    for rows in users.values():
        ordered = sorted(rows, key=lambda x: (x["event_time"] or datetime.max, x["source_row"]))
        active = [
            r["steps"] > cl.ACTIVITY_STEPS_ABOVE
            or (i > 0 and ordered[i - 1]["steps"] > cl.ACTIVITY_STEPS_ABOVE)
            for i, r in enumerate(ordered)
        ]
        runs: dict[str, list[tuple[str | None, float | None]]] = {}
        for r, is_active in zip(ordered, active, strict=True):
            for param in cl.NEWS2_PARAMETERS:
                band = param.band_for(r[param.metric])
                hit = band.score > 0 and band.kind not in cl.NEWS2_KINDS_COVERED_BY_BP
                direction = None
                if hit:
                    by_rule["news2"] += 1
                    by_kind[str(band.kind)] += 1
                    flagged_rows.add(r["source_row"])
                    eligible = not (param.metric == "heart_rate" and is_active and band.score < 3)
                    direction = cl.KINDS[str(band.kind)].direction if eligible else None
                runs.setdefault(param.metric, []).append((direction, _epoch(r["event_time"])))
            category = cl.bp_category(r["systolic_bp"], r["diastolic_bp"])
            hit = category.severity > cl.Severity.NONE
            if hit:
                by_rule["acc_aha"] += 1
                by_kind[category.name] += 1
                flagged_rows.add(r["source_row"])
            runs.setdefault("blood_pressure", []).append(
                ("high" if hit else None, _epoch(r["event_time"]))
            )
        episodes += sum(len(tw.find_runs(series)) for series in runs.values())
        for metric in BASELINE_METRICS:
            scores = tw.modified_z_scores([x[metric] for x in rows], metric)
            for r, score in zip(rows, scores, strict=True):
                if tw.is_outlier(score):
                    by_rule["baseline"] += 1
                    by_kind["baseline_deviation"] += 1
                    flagged_rows.add(r["source_row"])
    return {
        "by_rule": dict(by_rule),
        "by_kind": dict(by_kind),
        "total": sum(by_rule.values()),
        "readings_flagged": len(flagged_rows),
        "episodes": episodes,
    }


@pytest.mark.parametrize("name", ["sample_data.csv", "synthetic_health_data.csv"])
def test_sql_analysis_equals_python_on_the_seed_files(
    seed_dir: Path, tmp_path: Path, name: str
) -> None:
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        app, ["run", str(seed_dir / name), "--json", "--workspace", str(workspace)]
    )
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    bucket = workspace / "bucket"
    manifest = json.loads((bucket / "manifests" / f"{item['dataset_id']}.json").read_text())
    analysis = json.loads((bucket / "analyzed" / f"{item['dataset_id']}.json").read_text())

    readings = processed_readings(bucket, manifest)
    assert len(readings) == item["rows"]["valid"] == analysis["readings"]
    expected = python_analysis(readings)

    anomalies = analysis["anomalies"]
    assert anomalies["by_rule"] == expected["by_rule"]
    assert anomalies["by_kind"] == expected["by_kind"]
    assert anomalies["total"] == expected["total"] == item["anomalies"]
    assert anomalies["readings_flagged"] == expected["readings_flagged"]
    assert analysis["episodes"]["total"] == expected["episodes"]

    news2 = Counter(
        partial_news2(r["heart_rate"], r["spo2"], r["systolic_bp"], r["temp_c"]) for r in readings
    )
    assert analysis["news2_partial"]["distribution"] == {str(k): v for k, v in news2.items()}
    categories = Counter(cl.bp_category(r["systolic_bp"], r["diastolic_bp"]).name for r in readings)
    assert analysis["bp_categories"] == dict(categories)


def test_sql_analysis_equals_python_on_generated_data_with_episodes(tmp_path: Path) -> None:
    from healthpipe.synthetic import SyntheticSpec, generate_csv

    source = generate_csv(SyntheticSpec(rows=3000, users=6, seed=11), tmp_path / "gen.csv")
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    bucket = workspace / "bucket"
    manifest = json.loads((bucket / "manifests" / f"{item['dataset_id']}.json").read_text())
    analysis = json.loads((bucket / "analyzed" / f"{item['dataset_id']}.json").read_text())
    expected = python_analysis(processed_readings(bucket, manifest))
    assert analysis["anomalies"]["by_rule"] == expected["by_rule"]
    assert analysis["anomalies"]["by_kind"] == expected["by_kind"]
    assert analysis["anomalies"]["readings_flagged"] == expected["readings_flagged"]
    assert analysis["episodes"]["total"] == expected["episodes"] > 0
