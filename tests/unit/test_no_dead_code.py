"""Issue 16 item 5: no dead names in src/ (vulture, with a short allow-list of names only a
library, a decorator, a template or the tests use), and no test-only reference code there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_vulture_finds_no_dead_name_in_src() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vulture",
            "src",
            "vulture_allowlist.py",
            "--min-confidence",
            "60",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout == "" and done.returncode == 0, done.stdout + done.stderr


def test_the_reference_sql_and_python_twins_used_by_tests_only_live_under_tests() -> None:
    from healthpipe.domain import anomaly_sql, baseline, clinical, episodes

    assert not hasattr(anomaly_sql, "clinical_anomalies_sql")
    assert not hasattr(baseline, "modified_z_scores")
    assert not hasattr(clinical, "during_activity")
    assert not hasattr(episodes, "find_runs")
    assert not hasattr(anomaly_sql, "bp_severity_sql")
    assert not hasattr(clinical, "partial_news2")
    assert not hasattr(episodes, "find_episodes")
    from support.twins import clinical_anomalies_sql, partial_news2

    assert partial_news2(40, 91, 90, 35.0) == 12
    assert "acc_aha" in clinical_anomalies_sql("readings")
