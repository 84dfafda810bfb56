"""The OpenAI-compatible analyst against a small HTTP server that answers like the real API.

The server runs in a thread on 127.0.0.1 (port 0) and plays a script of replies; the real
httpx client talks to it, so timeouts, status codes and bodies go through the real stack.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import as_brief
from healthpipe.adapters.llm.openai_compat import OpenAICompatLanguageModel
from healthpipe.analysts.guarded import GuardedAnalyst
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.bootstrap import build_analyst
from healthpipe.config import load_settings

MODEL = "llama3.2"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class FakeOpenAI:
    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def completion(content: str, *, finish: str = "stop", usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1764000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 1800, "completion_tokens": 250, "total_tokens": 2050}
    return body


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    state = FakeOpenAI(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            reply = state.replies.pop(0) if state.replies else Reply(500, {"error": "no reply"})
            if reply.delay_seconds:
                state.release.wait(reply.delay_seconds)
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def guarded(url: str, sleeps: Sleeps | None = None, timeout: float = 10.0) -> GuardedAnalyst:
    model = OpenAICompatLanguageModel(url, MODEL, timeout_seconds=timeout)
    analyst = LLMAnalyst(model, prices=(0.0005, 0.0015), deadline_seconds=timeout)
    return GuardedAnalyst(analyst, retry_delay_seconds=0.0, sleep=sleeps or Sleeps())


def test_success_through_bootstrap_with_key_json_mode_usage_and_cost(
    server: FakeOpenAI, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    # GIVEN settings that pick the openai analyst, with a key and a price for the model
    settings = load_settings(
        {
            "analyst": "openai",
            "openai_base_url": server.url,
            "openai_model": MODEL,
            "openai_api_key": "sk-test",
            "llm_prices": {MODEL: (0.0005, 0.0015)},
        }
    )
    server.replies.append(Reply(body=completion(json.dumps(good_answer))))
    # WHEN the analyst that bootstrap builds analyzes a brief
    report = build_analyst(settings).analyze(as_brief(synthetic_brief))
    # THEN the request is a JSON-mode chat completion and the report carries usage and cost
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    body = request["json"]
    assert body["model"] == MODEL and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "<facts>" in body["messages"][1]["content"]
    assert report.provider == "openai" and report.model == MODEL
    assert report.fallback_reason is None and report.result.insights == good_answer["insights"]
    assert (report.usage.input_tokens, report.usage.output_tokens) == (1800, 250)
    assert report.usage.cost_usd == pytest.approx(1.8 * 0.0005 + 0.25 * 0.0015)
    assert not report.usage.estimated


def test_no_key_sends_no_authorization_header(
    server: FakeOpenAI, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    server.replies.append(Reply(body=completion(json.dumps(good_answer))))
    guarded(server.url).analyze(as_brief(synthetic_brief))
    assert "authorization" not in server.requests[0]["headers"]


def test_invalid_json_is_retried_once_then_builtin(
    server: FakeOpenAI, synthetic_brief: dict[str, Any]
) -> None:
    server.replies += [Reply(body=completion('{"insights": ["951 rea')) for _ in range(2)]
    report = guarded(server.url).analyze(as_brief(synthetic_brief))
    assert len(server.requests) == 2
    assert report.provider == "builtin" and report.fallback_reason == "malformed_output"
    assert report.attempted == f"openai:{MODEL}" and report.attempts == 2
    assert report.usage.input_tokens == 3600  # both failed attempts are accounted for


def test_429_waits_as_told_and_retries(
    server: FakeOpenAI, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    sleeps = Sleeps()
    server.replies += [
        Reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "2"}),
        Reply(body=completion(json.dumps(good_answer))),
    ]
    report = guarded(server.url, sleeps).analyze(as_brief(synthetic_brief))
    assert sleeps.calls == [2.0]
    assert report.provider == "openai" and report.attempts == 2


def test_persistent_429_falls_back(server: FakeOpenAI, synthetic_brief: dict[str, Any]) -> None:
    server.replies += [Reply(429, {"error": {"message": "Rate limit reached"}}) for _ in range(2)]
    report = guarded(server.url).analyze(as_brief(synthetic_brief))
    assert report.fallback_reason == "throttled" and "Rate limit reached" in str(
        report.fallback_detail
    )
    assert len(server.requests) == 2


def test_server_error_then_success(
    server: FakeOpenAI, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    server.replies += [
        Reply(503, {"error": {"message": "model is loading"}}),
        Reply(body=completion(json.dumps(good_answer))),
    ]
    report = guarded(server.url).analyze(as_brief(synthetic_brief))
    assert report.provider == "openai" and report.attempts == 2


def test_slow_server_times_out_and_falls_back_without_retry(
    server: FakeOpenAI, synthetic_brief: dict[str, Any]
) -> None:
    server.replies.append(Reply(body=completion("{}"), delay_seconds=30))
    report = guarded(server.url, timeout=0.5).analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin" and report.fallback_reason == "timeout"
    assert report.attempts == 1 and len(server.requests) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(401, {"error": {"message": "Incorrect API key provided"}}), "access_denied"),
        (Reply(404, {"error": {"message": "model 'llama3.2' not found"}}), "model_not_found"),
        (Reply(400, {"error": {"message": "response_format unsupported"}}), "bad_request"),
        (Reply(body=completion("{", finish="length")), "truncated"),
        (Reply(body=completion("", finish="content_filter")), "refused"),
    ],
)
def test_failures_that_a_retry_would_not_fix(
    server: FakeOpenAI, synthetic_brief: dict[str, Any], reply: Reply, reason: str
) -> None:
    server.replies.append(reply)
    report = guarded(server.url).analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin" and report.fallback_reason == reason
    assert len(server.requests) == 1


def test_a_body_that_is_not_a_chat_completion_is_malformed(
    server: FakeOpenAI, synthetic_brief: dict[str, Any]
) -> None:
    server.replies += [Reply(body=b"<html>gateway</html>"), Reply(body={"object": "list"})]
    report = guarded(server.url).analyze(as_brief(synthetic_brief))
    assert report.fallback_reason == "malformed_output" and len(server.requests) == 2


def test_missing_usage_is_estimated(
    server: FakeOpenAI, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    server.replies.append(Reply(body=completion(json.dumps(good_answer), usage=False)))
    report = guarded(server.url).analyze(as_brief(synthetic_brief))
    assert report.usage.estimated
    assert report.usage.input_tokens == report.grounding["prompt_tokens_estimate"]
    assert report.usage.output_tokens > 0 and report.usage.cost_usd > 0


def test_nothing_listening_falls_back_as_unavailable(synthetic_brief: dict[str, Any]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = guarded(f"http://127.0.0.1:{port}/v1").analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin" and report.fallback_reason == "unavailable"
    assert report.attempts == 1
