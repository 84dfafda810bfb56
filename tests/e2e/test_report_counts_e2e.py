"""Issue 13 through `healthpipe run`: the report counts findings one way everywhere (a
baseline finding on a reading that already has a clinical finding is not a second finding in
the headline, "Findings by type" or the participant table), blood
pressure reads as a pair in every part, and counted nouns are singular or plural."""

from __future__ import annotations

import json
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from pathlib import Path

from typer.testing import CliRunner

from healthpipe.cli import app
from support.readings import write_csv


def row(when: str, user: str, hr: float = 70, sbp: int = 115, dbp: int = 75) -> str:
    return f"2025-06-03T{when}:00Z,{user},{hr},98,10,36.8,{sbp},{dbp}"


def parts(path: Path) -> dict[str, str]:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    found = {}
    for kind in ("plain", "html"):
        body = message.get_body((kind,))
        assert body is not None
        text = body.get_content()
        found[kind] = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", text)))
    return found


def test_counts_pairs_and_plurals_in_report_and_alert(tmp_path: Path) -> None:
    # GIVEN p_flat: a steady 70 bpm, then 140 bpm (a NEWS2 3 tachycardia that is also a
    # baseline deviation), and p_bp: one crisis found on the diastolic, 170/121
    rows = [
        *(row(f"0{h}:00", "p_flat") for h in range(9)),
        row("09:00", "p_flat", hr=140),
        row("10:00", "p_bp", sbp=170, dbp=121),
        row("10:10", "p_bp"),
    ]
    source = tmp_path / "counts.csv"
    write_csv(source, rows)
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    dataset = item["dataset_id"]
    analysis = json.loads((workspace / "bucket" / "analyzed" / f"{dataset}.json").read_text())
    assert analysis["anomalies"]["baseline_with_clinical_finding"] == 1
    assert analysis["anomalies"]["total"] == 3  # the anomaly file keeps all three

    report = parts(workspace / "outbox" / f"report-{dataset}.eml")
    alert = parts(workspace / "outbox" / f"alert-{dataset}.eml")
    html, text = report["html"], report["plain"]
    # THEN the headline, the table by type and the participant row count 2 findings, not 3
    for shown in (html, text):
        assert "2 findings on 2 readings" in shown
        assert "1 baseline finding on readings that already have a clinical finding" in shown
        assert "Deviation from own baseline" not in shown
    assert re.search(r"P-\w+ [\d.]+ 1 1 0 0 ", html), "p_flat's row counts one finding"
    assert re.search(r"risk [\d.]+, 1 finding \(high 1, medium 0, low 0\), 0 episodes", text)
    # AND blood pressure is the pair everywhere, never the systolic alone
    for shown in (html, text, alert["html"], alert["plain"]):
        assert "170/121 mmHg" in shown
        assert "170 mmHg" not in shown
    # AND headings count participants in words that agree with the number
    assert "high-severity findings (2 participants)" in html
    assert "FINDINGS (2 participants;" in text
    assert "participant(s)" not in html + text + alert["html"] + alert["plain"]
    assert "10 readings, " in text and "0 episodes" in text


def test_counted_filter_is_singular_for_one() -> None:
    from healthpipe.report.render import counted

    assert counted(1, "participant") == "1 participant"
    assert counted("2", "participant") == "2 participants"
    assert counted("1,234", "participant") == "1,234 participants"
    assert counted(1, "more participant") == "1 more participant"
    assert counted("–", "finding") == "– findings"
