"""An analyst on any OpenAI-compatible `/v1/chat/completions` endpoint, through httpx.

Works with Ollama, llama.cpp server, vLLM, LM Studio and hosted APIs: base URL, model and
an optional API key come from settings. JSON output is requested with
`response_format={"type": "json_object"}` and the schema is in the system prompt;
temperature 0. HTTP failures are translated at the boundary: 429 -> throttled (with the
server's Retry-After), 5xx -> server_error, 401/403 -> access_denied, 404 ->
model_not_found, other 4xx -> bad_request, timeouts -> timeout, refused connections ->
unavailable.
"""

from __future__ import annotations

from typing import Any

import httpx

from healthpipe.analysts.errors import AnalystError
from healthpipe.analysts.llm import Completion, LLMAnalyst
from healthpipe.analysts.prompt import Prompt

CONNECT_TIMEOUT_SECONDS = 5.0
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


class OpenAICompatAnalyst(LLMAnalyst):
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
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.timeout = httpx.Timeout(
            timeout_seconds, connect=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)
        )
        self.transport = transport

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

    def _post(self, prompt: Prompt) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                return client.post(self.url, json=self.request_body(prompt), headers=headers)
        except httpx.TimeoutException as exc:
            raise AnalystError(
                "timeout", f"{type(exc).__name__} after {self.timeout.read}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise AnalystError("unavailable", f"{type(exc).__name__}: {exc}") from exc

    def _complete(self, prompt: Prompt) -> Completion:
        response = self._post(prompt)
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
        if message.get("refusal") or finish == "content_filter":
            raise AnalystError(
                "refused",
                str(message.get("refusal") or "finish_reason content_filter"),
                usage=self.usage(prompt, input_tokens, output_tokens),
            )
        if finish == "length":
            raise AnalystError(
                "truncated",
                "the answer hit max_tokens",
                usage=self.usage(prompt, input_tokens, output_tokens),
            )
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise AnalystError(
                "malformed_output",
                "the answer has no content",
                usage=self.usage(prompt, input_tokens, output_tokens),
            )
        return Completion(content, input_tokens, output_tokens)
