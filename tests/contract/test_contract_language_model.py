"""The LanguageModel port's contract, on both adapters: Bedrock Converse (a real
bedrock-runtime client with botocore's Stubber) and an OpenAI-compatible endpoint (the real
httpx client on a mock transport). Whatever the provider, an answer is a Completion with the
tokens it reported, and a failure is an AnalystError with the same reason and retry policy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber

from healthpipe.adapters.aws.bedrock_completion import BedrockLanguageModel
from healthpipe.adapters.llm.openai_compat import OpenAICompatLanguageModel
from healthpipe.analysts.prompt import output_tool
from healthpipe.ports import AnalystError, LanguageModel, Prompt

ANSWER = {
    "insights": ["951 readings."],
    "recommendations": ["Review P01."],
    "summary": "Risk is high.",
    "risk_level": "high",
}


@dataclass
class Provider:
    """A language model and how to make its provider answer, refuse, cut or throttle."""

    model: LanguageModel
    answer: Callable[[dict[str, Any], tuple[int, int]], None]
    stop: Callable[[str, tuple[int, int]], None]  # "refused" or "truncated"
    throttle: Callable[[], None]


def bedrock() -> Iterator[Provider]:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    client = session.client("bedrock-runtime", region_name="us-east-1")
    stops = {"refused": "content_filtered", "truncated": "max_tokens"}

    def response(content: list[dict[str, Any]], stop: str, tokens: tuple[int, int]) -> Any:
        usage = {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)}
        message = {"role": "assistant", "content": content}
        return {
            "output": {"message": message},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 5},
        }

    with Stubber(client) as stub:
        tool = output_tool().name
        yield Provider(
            BedrockLanguageModel("us.amazon.nova-lite-v1:0", client=client),
            answer=lambda answer, tokens: stub.add_response(
                "converse",
                response(
                    [{"toolUse": {"toolUseId": "t1", "name": tool, "input": answer}}],
                    "tool_use",
                    tokens,
                ),
            ),
            stop=lambda kind, tokens: stub.add_response(
                "converse", response([{"text": "{"}], stops[kind], tokens)
            ),
            throttle=lambda: stub.add_client_error(
                "converse", service_error_code="ThrottlingException", http_status_code=429
            ),
        )
        stub.assert_no_pending_responses()


def openai() -> Iterator[Provider]:
    replies: list[httpx.Response] = []
    finishes = {"refused": "content_filter", "truncated": "length"}

    def completion(content: str, finish: str, tokens: tuple[int, int]) -> httpx.Response:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish,
        }
        usage = {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}
        return httpx.Response(200, json={"choices": [choice], "usage": usage})

    transport = httpx.MockTransport(lambda request: replies.pop(0))
    yield Provider(
        OpenAICompatLanguageModel("http://127.0.0.1:9/v1", "llama3.2", transport=transport),
        answer=lambda answer, tokens: replies.append(
            completion(json.dumps(answer), "stop", tokens)
        ),
        stop=lambda kind, tokens: replies.append(completion("{", finishes[kind], tokens)),
        throttle=lambda: replies.append(
            httpx.Response(429, json={"error": {"message": "slow down"}})
        ),
    )
    assert replies == []


@pytest.fixture(params=["bedrock", "openai"])
def provider(request: pytest.FixtureRequest) -> Iterator[Provider]:
    yield from {"bedrock": bedrock, "openai": openai}[request.param]()


def prompt_for(model: LanguageModel) -> Prompt:
    tool = output_tool() if model.output_mode == "tool" else None
    return Prompt("Answer from the facts.", '<facts>\n{"rows": 951}\n</facts>', {}, 20, 0, tool)


def call(provider: Provider) -> Any:
    return provider.model.complete(prompt_for(provider.model), time.monotonic() + 10)


def test_an_answer_is_a_completion_with_the_tokens_the_provider_reported(
    provider: Provider,
) -> None:
    provider.answer(ANSWER, (1800, 250))
    completion = call(provider)
    output = completion.output
    assert (json.loads(output) if isinstance(output, str) else output) == ANSWER
    assert (completion.input_tokens, completion.output_tokens) == (1800, 250)


@pytest.mark.parametrize("kind", ["refused", "truncated"])
def test_a_billed_unusable_answer_is_a_final_error_carrying_its_tokens(
    provider: Provider, kind: str
) -> None:
    provider.stop(kind, (1800, 7))
    with pytest.raises(AnalystError) as caught:
        call(provider)
    assert caught.value.reason == kind and caught.value.retryable is False
    assert caught.value.tokens == (1800, 7)


def test_throttling_is_a_retryable_error_without_tokens(provider: Provider) -> None:
    provider.throttle()
    with pytest.raises(AnalystError) as caught:
        call(provider)
    assert caught.value.reason == "throttled" and caught.value.retryable is True
    assert caught.value.tokens is None
