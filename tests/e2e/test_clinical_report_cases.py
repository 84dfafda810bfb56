"""Clinical presentation end to end through `healthpipe run`: the worst reading leads the
review list, the insights and the emails, whatever the ranking by rate; blood pressure is a
pair; a file without valid readings is "not assessable", never low risk (issue 13)."""

from __future__ import annotations

import email
import json
import re
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

NOT_ASSESSABLE = "not assessable: no valid readings"  # the wording the issue asks for
HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"
START = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)  # before the suite's clock floor
REASSURING = re.compile(
    r"no urgent action|routine monitoring|no action (is )?(needed|required|indicated)", re.I
)


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(workspace: Path, source: Path) -> dict[str, Any]:
    from healthpipe.cli import app

    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout.strip().splitlines()[-1])["files"]
    assert outcome["status"] == "processed", outcome
    return dict(outcome)


def analysis_of(workspace: Path, dataset_id: str) -> dict[str, Any]:
    path = workspace / "bucket" / "analyzed" / f"{dataset_id}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def email_text(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    parts = [message.get_body(("plain",)), message.get_body(("html",))]
    return "\n".join(str(p.get_content()) for p in parts if p is not None)


def diluted_file(path: Path) -> Path:
    """12 participants × 2 normal readings (one at 132/78) + 1 participant × 100 readings
    with one SpO2 of 85 %."""
    lines = [HEADER]
    for n in range(12):
        lines.append(f"{at(n)},user{n:02d},72,98,10,36.8,132,78")
        lines.append(f"{at(60 + n)},user{n:02d},70,98,10,36.7,118,76")
    for i in range(100):
        spo2 = 85 if i == 20 else 97
        lines.append(f"{at(10 * i)},zed,72,{spo2},10,36.8,118,76")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_one_dangerous_reading_among_many_leads_everything(tmp_path: Path) -> None:
    # GIVEN the dilution file
    workspace = tmp_path / "ws"
    outcome = run(workspace, diluted_file(tmp_path / "diluted.csv"))
    analysis = analysis_of(workspace, outcome["dataset_id"])
    # THEN the participant with SpO2 85 % is first in the ranking and in the review list
    assert analysis["users"]["top"][0]["user_id"] == "zed"
    review = [r for r in analysis["recommendations"] if r.startswith("Review first")]
    assert review and re.search(r": P01\b", review[0]), analysis["recommendations"]
    # AND named with the reading in the insights
    assert any("P01" in t and "SpO2 85 %" in t for t in analysis["insights"]), analysis["insights"]
    # AND the baseline deviation on that same reading is not a second headline finding
    assert any(
        t.startswith("13 of 124 valid readings") and "1 finding was high severity, 0 medium" in t
        for t in analysis["insights"]
    ), analysis["insights"]
    # AND in the alert email and the report email of the workspace outbox
    outbox = workspace / "outbox"
    alert = email_text(outbox / f"alert-{outcome['dataset_id']}.eml")
    report = email_text(outbox / f"report-{outcome['dataset_id']}.eml")
    assert "SpO2 85 %" in alert and "SpO2 85 %" in report
    # AND no sentence of the report says that no action is needed
    html = Path(outcome["report"]).read_text(encoding="utf-8")
    for text in (report, html, *analysis["insights"], *analysis["recommendations"]):
        assert not REASSURING.search(text), text
    assert analysis["risk_level"] in {"high", "critical"}


def test_crisis_on_the_diastolic_is_shown_as_a_pair(tmp_path: Path) -> None:
    # GIVEN a participant whose crisis is found on the diastolic (170/121)
    lines = [HEADER, f"{at(0)},p1,72,98,10,36.8,170,121", f"{at(30)},p1,70,98,10,36.8,118,95"]
    source = tmp_path / "bp.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    workspace = tmp_path / "ws"
    outcome = run(workspace, source)
    # THEN the alert and the report show 170/121 mmHg and name the diastolic
    outbox = workspace / "outbox"
    for name in (f"alert-{outcome['dataset_id']}.eml", f"report-{outcome['dataset_id']}.eml"):
        text = email_text(outbox / name)
        assert "170/121 mmHg" in text, name
        assert "diastolic above 120" in text, name
    assert "170 mmHg" not in email_text(outbox / f"alert-{outcome['dataset_id']}.eml")


def test_file_with_every_row_rejected_is_not_assessable(tmp_path: Path) -> None:
    # GIVEN a file whose rows all fail validation
    source = tmp_path / "rejected.csv"
    source.write_text(
        f"{HEADER}\nnot-a-time,u1,x,98,10,36.8,120,80\n{at(0)},u2,abc,98,10,36.8,120,80\n",
        encoding="utf-8",
    )
    workspace = tmp_path / "ws"
    outcome = run(workspace, source)
    # THEN the --json summary, the analysis, the report and the email say "not assessable"
    assert outcome["rows"]["valid"] == 0
    assert outcome["assessment"] == NOT_ASSESSABLE
    analysis = analysis_of(workspace, outcome["dataset_id"])
    assert analysis["assessment"]["status"] == NOT_ASSESSABLE
    assert analysis["risk_level"] != "low"
    html = Path(outcome["report"]).read_text(encoding="utf-8")
    mail = email_text(Path(outcome["email"]))
    for text in (html, mail):
        assert NOT_ASSESSABLE in text
        assert "risk is low" not in text.lower() and "risk: low" not in text.lower()
