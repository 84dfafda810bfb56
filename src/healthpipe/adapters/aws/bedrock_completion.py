"""Bedrock completions: the LanguageModel port on Amazon Bedrock Runtime Converse.

Converse is called with a forced tool for JSON output.

The request sends the system prompt apart from the data, forces a single tool whose input
schema is the InsightSet JSON schema (`toolChoice` = that tool), and asks for temperature 0.
The client is built on first use (so missing credentials become a fallback, not a crash),
with botocore's standard retry mode (exponential backoff with jitter on throttling), a
connect and a read timeout. `modelId` may be a foundation-model id
(`amazon.nova-lite-v1:0`) or an inference-profile id (`us.amazon.nova-lite-v1:0`).

botocore's read timeout and retries are per call; the one total deadline of the exchange
(`deadline_seconds`, from `llm_timeout_seconds`) is enforced by the LLM analyst that
composes this model, which stops waiting for the call when it passes; the answer goes
through the same meaning guard and grounding as every LLM analyst's (`analysts/llm.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from healthpipe.ports import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    AnalystError,
    Completion,
    LanguageModel,
    Prompt,
)

IAM_ACTIONS: tuple[str, ...] = ("bedrock:InvokeModel",)  # Converse is authorised by it
DEFAULT_REGION = "us-east-1"
MAX_BOTO_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 5.0

ERROR_REASONS = {
    "ThrottlingException": "throttled",
    "ServiceQuotaExceededException": "throttled",
    "TooManyRequestsException": "throttled",
    "AccessDeniedException": "access_denied",
    "UnrecognizedClientException": "access_denied",
    "InvalidSignatureException": "access_denied",
    "ExpiredTokenException": "access_denied",
    "ResourceNotFoundException": "model_not_found",
    "ValidationException": "bad_request",
    "ModelTimeoutException": "timeout",
    "InternalServerException": "server_error",
    "ServiceUnavailableException": "server_error",
    "ModelNotReadyException": "server_error",
    "ModelErrorException": "server_error",
}
REFUSAL_STOP_REASONS = frozenset({"guardrail_intervened", "content_filtered"})

ClientFactory = Callable[[], Any]


def bedrock_client_factory(
    *, region: str = "", timeout_seconds: float = 30.0, session: Any = None
) -> ClientFactory:
    """Builds the bedrock-runtime client when first needed, never at import."""

    def build() -> Any:
        chosen = session or boto3.session.Session()
        if chosen.get_credentials() is None:
            raise AnalystError("no_credentials", "no AWS credentials were found")
        config = Config(
            retries={"mode": "standard", "max_attempts": MAX_BOTO_ATTEMPTS},
            connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds),
            read_timeout=timeout_seconds,
        )
        return chosen.client(
            "bedrock-runtime",
            region_name=region or chosen.region_name or DEFAULT_REGION,
            config=config,
        )

    return build


def converse_request(model_id: str, prompt: Prompt, max_tokens: int) -> dict[str, Any]:
    request: dict[str, Any] = {
        "modelId": model_id,
        "system": [{"text": prompt.system}],
        "messages": [{"role": "user", "content": [{"text": prompt.user}]}],
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.0},
    }
    if prompt.tool is not None:
        request["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": prompt.tool.name,
                        "description": prompt.tool.description,
                        "inputSchema": {"json": prompt.tool.input_schema},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": prompt.tool.name}},
        }
    return request


def translate_error(exc: Exception) -> AnalystError:
    if isinstance(exc, AnalystError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        reason = ERROR_REASONS.get(code) or ("server_error" if status >= 500 else "bad_request")
        return AnalystError(reason, f"{code}: {error.get('Message', '')}")
    if isinstance(exc, NoCredentialsError):
        return AnalystError("no_credentials", str(exc))
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return AnalystError("timeout", str(exc))
    if isinstance(exc, EndpointConnectionError | NoRegionError):
        return AnalystError("unavailable", str(exc))
    if isinstance(exc, ParamValidationError):
        return AnalystError("bad_request", str(exc))
    return AnalystError("unavailable", f"{type(exc).__name__}: {exc}")


class BedrockLanguageModel(LanguageModel):
    provider = "bedrock"
    output_mode = "tool"

    def __init__(
        self,
        model_id: str,
        *,
        client: Any = None,
        client_factory: ClientFactory | None = None,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        super().__init__(model_id, max_output_tokens=max_output_tokens)
        if client is None and client_factory is None:
            raise ValueError("give a bedrock-runtime client or a client factory")
        self._client = client
        self._client_factory = client_factory

    def client(self) -> Any:
        if self._client is None:
            assert self._client_factory is not None
            try:
                self._client = self._client_factory()
            except (AnalystError, BotoCoreError) as exc:
                raise translate_error(exc) from exc
        return self._client

    def complete(self, prompt: Prompt, deadline: float) -> Completion:
        """One Converse call; botocore's timeouts bound it, the caller waits until `deadline`."""
        request = converse_request(self.model, prompt, self.max_output_tokens)
        try:
            response = self.client().converse(**request)
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc) from exc
        tokens = response.get("usage", {})
        input_tokens, output_tokens = tokens.get("inputTokens"), tokens.get("outputTokens")
        stop = response.get("stopReason")
        billed = (input_tokens, output_tokens)
        if stop in REFUSAL_STOP_REASONS:
            raise AnalystError("refused", f"stopReason {stop}", tokens=billed)
        if stop == "max_tokens":
            raise AnalystError("truncated", "the answer hit maxTokens", tokens=billed)
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        tool_name = prompt.tool.name if prompt.tool is not None else None
        for block in blocks:
            tool_use = block.get("toolUse")
            if tool_use and tool_use.get("name") == tool_name:
                return Completion(tool_use.get("input") or {}, input_tokens, output_tokens)
        text = "".join(block.get("text", "") for block in blocks)
        if not text.strip():
            raise AnalystError(
                "malformed_output", f"no tool use and no text (stopReason {stop})", tokens=billed
            )
        return Completion(text, input_tokens, output_tokens)
