"""The LanguageModel port on any OpenAI-compatible `/v1/chat/completions` endpoint (httpx).

Works with Ollama, llama.cpp server, vLLM, LM Studio and hosted APIs: base URL, model and
an optional API key come from settings. JSON output is requested with
`response_format={"type": "json_object"}` and the schema is in the system prompt;
temperature 0. HTTP failures are translated at the boundary: 429 -> throttled (with the
server's Retry-After), 5xx -> server_error, 401/403 -> access_denied, 404 ->
model_not_found, other 4xx -> bad_request, timeouts -> timeout, refused connections ->
unavailable.

The body is streamed and the call's deadline (given by the LLM analyst) is checked after
every chunk, with no read waiting longer than the time left: an endpoint that sends one
byte every 2 s cannot hold the call past its deadline (httpx's read timeout restarts on
every byte). Bodies above MAX_BODY_BYTES are refused as malformed. `timeout_seconds` is
the per-operation timeout; bootstrap gives the analyst's total deadline the same value.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from healthpipe.ports import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    AnalystError,
    Completion,
    LanguageModel,
    Prompt,
)

CONNECT_TIMEOUT_SECONDS = 5.0
MAX_BODY_BYTES = 4_000_000
KEPT_HEADERS = ("content-type", "retry-after")
STATUS_REASONS = {
    401: "access_denied",
    403: "access_denied",
    404: "model_not_found",
    429: "throttled",
}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(error or body)[:200]


class OpenAICompatLanguageModel(LanguageModel):
    provider = "openai"
    output_mode = "json"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        super().__init__(model, max_output_tokens=max_output_tokens)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    def _timeout(self, deadline: float) -> httpx.Timeout:
        """The per-operation timeouts, never longer than the time left."""
        left = max(0.001, min(self.timeout_seconds, deadline - time.monotonic()))
        return httpx.Timeout(left, connect=min(CONNECT_TIMEOUT_SECONDS, left))

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "temperature": 0,
            "max_tokens": self.max_output_tokens,
            "response_format": {"type": "json_object"},
        }

    def _post(self, prompt: Prompt, deadline: float) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        timeout = self._timeout(deadline)
        try:
            with (
                httpx.Client(timeout=timeout, transport=self.transport) as client,
                client.stream(
                    "POST", self.url, json=self.request_body(prompt), headers=headers
                ) as response,
            ):
                body = self._read_body(response, deadline)
        except httpx.TimeoutException as exc:
            raise AnalystError("timeout", f"{type(exc).__name__} after {timeout.read:g}s") from exc
        except httpx.HTTPError as exc:
            raise AnalystError("unavailable", f"{type(exc).__name__}: {exc}") from exc
        kept = {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
        return httpx.Response(response.status_code, headers=kept, content=body)

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise AnalystError(
                    "timeout",
                    f"the answer was still arriving at the total deadline of "
                    f"{self.timeout_seconds:g}s",
                )
            if size > MAX_BODY_BYTES:
                raise AnalystError("malformed_output", f"the answer exceeds {MAX_BODY_BYTES} bytes")
        return b"".join(chunks)

    def complete(self, prompt: Prompt, deadline: float) -> Completion:
        response = self._post(prompt, deadline)
        if response.status_code >= 400:
            status = response.status_code
            reason = STATUS_REASONS.get(status) or (
                "server_error" if status >= 500 else "bad_request"
            )
            raise AnalystError(
                reason,
                f"HTTP {status}: {_error_message(response)}",
                retry_after=_retry_after(response) if status == 429 else None,
            )
        try:
            body = response.json()
            choice = body["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise AnalystError("malformed_output", f"not a chat completion: {exc!r}") from exc
        tokens = body.get("usage") or {}
        input_tokens, output_tokens = tokens.get("prompt_tokens"), tokens.get("completion_tokens")
        finish = choice.get("finish_reason")
        billed = (input_tokens, output_tokens)
        if message.get("refusal") or finish == "content_filter":
            raise AnalystError(
                "refused",
                str(message.get("refusal") or "finish_reason content_filter"),
                tokens=billed,
            )
        if finish == "length":
            raise AnalystError("truncated", "the answer hit max_tokens", tokens=billed)
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise AnalystError("malformed_output", "the answer has no content", tokens=billed)
        return Completion(content, input_tokens, output_tokens)
