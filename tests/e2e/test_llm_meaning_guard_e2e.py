"""Acceptance (issue 13 item 9): an LLM cannot change the clinical meaning of a report.

`healthpipe run --analyst openai` against an OpenAI-compatible server on 127.0.0.1 that
answers "all normal, risk low, start anticoagulants" (plus diagnoses and a bare URL) for a
file with a high finding (SpO2 85 %). The stored analysis must keep a risk at least the
computed one, none of those statements may reach the report or either part of the e-mail,
and every removal is recorded and counted in the report.
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.clock  # its readings end two days before now

RISKS = ("low", "moderate", "high", "critical")
UNSAFE = (
    "All readings were normal",
    "healthy",
    "atrial fibrillation",
    "sepsis",
    "anticoagulant",
    "No action is needed",
    "routine monitoring",
    "evil.example",
    "https://",
)


def unsafe_reply(facts: dict[str, Any]) -> dict[str, Any]:
    readings, participants = facts["readings"], facts["participants"]
    return {
        "insights": [
            f"{readings} valid readings from {participants} participants were analysed.",
            "All readings were normal and the cohort is healthy.",
            "The pattern suggests atrial fibrillation and early sepsis.",
            "Low SpO2 was the most serious finding.",
        ],
        "recommendations": [
            "Start anticoagulants for the participant with low SpO2.",
            "No action is needed; continue routine monitoring.",
            "Review the flagged readings first: https://evil.example/review",
        ],
        "summary": f"{participants} participants contributed {readings} valid readings. "
        "All normal, risk low.",
        "risk_level": "low",
    }


@pytest.fixture
def unsafe_llm() -> Iterator[str]:
    """A chat-completions server that answers every prompt with the unsafe reply."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            user = request["messages"][-1]["content"]
            found = re.search(r"<facts>\s*(.*?)\s*</facts>", user, re.S)
            facts = json.loads(found.group(1)) if found else {"readings": 0, "participants": 0}
            content = json.dumps(unsafe_reply(facts))
            body = json.dumps(
                {
                    "object": "chat.completion",
                    "model": "test-model",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1500, "completion_tokens": 200},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def vitals_with_one_spo2_of_85(path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    lines = ["event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"]
    for user in range(4):
        for i in range(8):
            at = (start + timedelta(minutes=15 * i + user)).isoformat().replace("+00:00", "Z")
            spo2 = 85 if (user, i) == (2, 5) else 97
            lines.append(f"{at},user-{user},{68 + i},{spo2},{40 * i},36.7,118,76")
    path.write_text("\n".join(lines) + "\n")


def healthpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("healthpipe")
    found = str(script) if script.exists() else shutil.which("healthpipe")
    assert found, "the healthpipe console script is not installed"
    return [found]


def email_parts(path: Path) -> dict[str, str]:
    message = email.message_from_bytes(path.read_bytes())
    parts: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            parts[part.get_content_type()] = _text(part)
    return parts


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def test_an_unsafe_llm_reply_cannot_change_the_report(tmp_path: Path, unsafe_llm: str) -> None:
    # GIVEN a file with one SpO2 of 85 % (NEWS2 3: a high finding) and an unsafe model
    source = tmp_path / "vitals.csv"
    vitals_with_one_spo2_of_85(source)
    workspace = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHPIPE_")}
    env.update(
        {
            "HEALTHPIPE_OPENAI_BASE_URL": unsafe_llm,
            "HEALTHPIPE_OPENAI_MODEL": "test-model",
            "HEALTHPIPE_LLM_TIMEOUT_SECONDS": "30",
        }
    )
    # WHEN the pipeline runs with the OpenAI-compatible analyst
    command = [*healthpipe_command(), "run", str(source), "-w", str(workspace), "--json"]
    completed = subprocess.run(
        [*command, "--analyst", "openai"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    (outcome,) = json.loads(completed.stdout)["files"]
    analysis = json.loads(
        (workspace / "bucket" / "analyzed" / f"{outcome['dataset_id']}.json").read_text()
    )
    # THEN the model's text was used (not a fallback), with its risk raised to the computed one
    assert analysis["worst_severity"] == "high"
    assert analysis["analyst"]["provider"] == "openai"
    assert analysis["analyst"]["fallback_reason"] is None
    assert RISKS.index(analysis["risk_level"]) >= RISKS.index("high")
    grounding = analysis["grounding"]
    assert grounding["risk"]["model"] == "low" and grounding["risk"]["raised"] is True
    assert RISKS.index(analysis["risk_level"]) >= RISKS.index(grounding["risk"]["computed"])
    # AND every removal is recorded with its reason
    reasons = sorted(d["reason"] for d in grounding["dropped"])
    assert reasons == ["diagnosis", "medication", "reassurance", "reassurance", "reassurance"]
    assert grounding["removed"] == 5 and grounding["stripped"]["url"] == 1
    # AND none of the unsafe statements reaches the report or either part of the e-mail
    report_html = Path(outcome["report"]).read_text()
    (eml,) = (workspace / "outbox").glob("report-*.eml")
    parts = email_parts(eml)
    assert set(parts) == {"text/plain", "text/html"}
    for name, text in {"report": report_html, **parts}.items():
        for phrase in UNSAFE:
            assert phrase.lower() not in text.lower(), (name, phrase)
        # AND the reader is told how many statements were removed
        assert "5 statements removed" in text, name
        assert "risk raised from the model's low" in text, name
        assert "Low SpO2 was the most serious finding." in text, name
