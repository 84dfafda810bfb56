"""One total deadline covers the whole LLM exchange, retries and waits included.

Issue 13 item 9: an endpoint that sends one byte every 2 s kept the analysis waiting 30 s
with a 3 s timeout (httpx's read timeout restarts on every byte; nothing bounded the whole
call). Here a server on 127.0.0.1 trickles its answer one byte at a time (at most 8 s, so
the old behaviour fails these tests in bounded time) and the analyst must give up at its
deadline, for the OpenAI-compatible and the Bedrock analyst alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from conftest import as_brief
from healthpipe.adapters.llm.openai_compat import OpenAICompatLanguageModel
from healthpipe.analysts.guarded import GuardedAnalyst
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.bootstrap import build_analyst
from healthpipe.config import load_settings

TRICKLE_BYTES = 16
TRICKLE_INTERVAL = 0.5  # seconds between bytes: 8 s for the whole body
DEADLINE = 1.5
SLACK = 1.0  # scheduling slack on a busy 2-core machine


@dataclass
class Trickler:
    url: str = ""
    statuses: list[int] = field(default_factory=list)  # replies before the trickle
    requests: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    state = Trickler()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests += 1
            if state.statuses:
                status = state.statuses.pop(0)
                body = b'{"error": {"message": "try later"}}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status == 429:
                    self.send_header("Retry-After", "30")
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(TRICKLE_BYTES))
            self.end_headers()
            try:
                for _ in range(TRICKLE_BYTES):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    if state.stop.wait(TRICKLE_INTERVAL):
                        return
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def openai(url: str, sleeps: list[float]) -> GuardedAnalyst:
    # the timeout (1.5 s) is longer than the gap between bytes, as in the issue (3 s vs 2 s)
    model = OpenAICompatLanguageModel(f"{url}/v1", "llama3.2", timeout_seconds=DEADLINE)
    analyst = LLMAnalyst(model, deadline_seconds=DEADLINE)
    return GuardedAnalyst(analyst, retry_delay_seconds=0.0, sleep=sleeps.append)


def test_a_trickling_endpoint_cannot_hold_the_analysis_past_the_deadline(
    trickler: Trickler, synthetic_brief: dict[str, Any]
) -> None:
    # GIVEN an endpoint that sends one byte every 0.5 s and a 1.5 s timeout
    started = time.monotonic()
    # WHEN the OpenAI-compatible analyst asks it
    report = openai(trickler.url, []).analyze(as_brief(synthetic_brief))
    elapsed = time.monotonic() - started
    # THEN it gives up at the deadline and the builtin analyst writes the text
    assert elapsed < DEADLINE + SLACK, elapsed
    assert report.provider == "builtin" and report.fallback_reason == "timeout"
    assert "deadline" in str(report.fallback_detail)
    assert trickler.requests == 1


def test_the_deadline_covers_the_retry_too(
    trickler: Trickler, synthetic_brief: dict[str, Any]
) -> None:
    # GIVEN a server error (retried once), then the trickle
    trickler.statuses.append(503)
    started = time.monotonic()
    report = openai(trickler.url, []).analyze(as_brief(synthetic_brief))
    elapsed = time.monotonic() - started
    # THEN both attempts together stop at the one deadline
    assert trickler.requests == 2
    assert elapsed < DEADLINE + SLACK, elapsed
    assert report.fallback_reason == "timeout" and report.attempts == 2


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(
    trickler: Trickler, synthetic_brief: dict[str, Any]
) -> None:
    # GIVEN a 429 asking for 30 s (capped at 10 s) when the deadline is 1.5 s away
    trickler.statuses.append(429)
    sleeps: list[float] = []
    report = openai(trickler.url, sleeps).analyze(as_brief(synthetic_brief))
    # THEN the analyst does not sleep into a retry it could not finish in time
    assert sleeps == [] and trickler.requests == 1
    assert report.fallback_reason == "throttled"
    assert "no time left" in str(report.fallback_detail)


def test_the_bedrock_analyst_has_the_same_total_deadline(
    trickler: Trickler, synthetic_brief: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Bedrock analyst as bootstrap builds it, its endpoint the trickling local server
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", trickler.url)
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    settings = load_settings({"analyst": "bedrock", "llm_timeout_seconds": DEADLINE})
    analyst = build_analyst(settings, session=session)
    # WHEN it analyzes a brief
    started = time.monotonic()
    report = analyst.analyze(as_brief(synthetic_brief))
    elapsed = time.monotonic() - started
    # THEN it gives up at the deadline, botocore's own retries included
    assert trickler.requests >= 1
    assert elapsed < DEADLINE + SLACK, elapsed
    assert report.provider == "builtin" and report.fallback_reason == "timeout"
