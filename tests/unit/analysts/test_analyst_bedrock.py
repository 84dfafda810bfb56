"""The Bedrock analyst (LLMAnalyst over Bedrock completions) on a real bedrock-runtime client
with botocore's Stubber.

The Stubber validates every request we send against the service model (and every canned
response against the response shape), so these tests also prove the Converse request is
well formed: system prompt apart, one forced tool with our schema, temperature 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from conftest import as_brief
from healthpipe.adapters.aws import bedrock_completion
from healthpipe.adapters.aws.bedrock_completion import BedrockLanguageModel
from healthpipe.analysts.builtin import risk_level
from healthpipe.analysts.guarded import GuardedAnalyst
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.analysts.prompt import TOOL_NAME, insight_schema
from healthpipe.config import Settings

MODEL = "us.amazon.nova-lite-v1:0"  # an inference-profile id


@pytest.fixture
def client() -> Any:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def guarded(client: Any) -> GuardedAnalyst:
    model = BedrockLanguageModel(MODEL, client=client)
    analyst = LLMAnalyst(model, prices=Settings().llm_price(MODEL))
    return GuardedAnalyst(analyst, retry_delay_seconds=0.0, sleep=lambda _: None)


def expected_request() -> dict[str, Any]:
    return {
        "modelId": MODEL,
        "system": [{"text": ANY}],
        "messages": [{"role": "user", "content": [{"text": ANY}]}],
        "inferenceConfig": {"maxTokens": ANY, "temperature": 0.0},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": TOOL_NAME,
                        "description": ANY,
                        "inputSchema": {"json": insight_schema()},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": TOOL_NAME}},
        },
    }


def converse_response(
    content: list[dict[str, Any]], stop: str = "tool_use", tokens: tuple[int, int] = (2000, 300)
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {
            "inputTokens": tokens[0],
            "outputTokens": tokens[1],
            "totalTokens": sum(tokens),
        },
        "metrics": {"latencyMs": 850},
    }


def tool_use(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"toolUse": {"toolUseId": "tooluse_1", "name": TOOL_NAME, "input": answer}}]


def test_module_declares_exactly_the_iam_action_converse_needs() -> None:
    assert bedrock_completion.IAM_ACTIONS == ("bedrock:InvokeModel",)


def test_tool_use_answer_becomes_the_report_with_usage_and_cost(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    # GIVEN Bedrock answers by calling our tool
    stubber.add_response("converse", converse_response(tool_use(good_answer)), expected_request())
    # WHEN the guarded Bedrock analyst analyzes the brief
    report = guarded(client).analyze(as_brief(synthetic_brief))
    # THEN the model's text is the result, with provenance, usage and cost from the price table
    assert report.provider == "bedrock" and report.model == MODEL
    assert report.fallback_reason is None and report.attempts == 1
    assert report.result.insights == good_answer["insights"]
    computed = risk_level(as_brief(synthetic_brief))  # never below what the facts give
    assert report.result.risk_level == computed
    assert report.grounding["risk"]["raised"] == (computed != good_answer["risk_level"])
    assert (report.usage.input_tokens, report.usage.output_tokens) == (2000, 300)
    assert report.usage.cost_usd == pytest.approx(2000 / 1000 * 0.00006 + 300 / 1000 * 0.00024)
    assert report.grounding["dropped"] == [] and report.grounding["checked"] == 6


def test_request_keeps_instructions_and_data_apart(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.update(params)

    client.meta.events.register("provide-client-params.bedrock-runtime.Converse", capture)
    stubber.add_response("converse", converse_response(tool_use(good_answer)), expected_request())
    guarded(client).analyze(as_brief(synthetic_brief))
    system, user = sent["system"][0]["text"], sent["messages"][0]["content"][0]["text"]
    assert "<facts>" in user and "<facts>" not in system.split("between")[0]
    facts = json.loads(user.split("<facts>\n", 1)[1].split("\n</facts>", 1)[0])
    assert facts["readings"] == synthetic_brief["readings"]
    assert str(synthetic_brief["anomalies"]["total"]) not in system


def test_json_in_text_answer_is_accepted(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    # GIVEN a model that ignores the tool and writes the JSON as text, in a code fence
    text = "Here is the analysis:\n```json\n" + json.dumps(good_answer) + "\n```"
    stubber.add_response(
        "converse", converse_response([{"text": text}], stop="end_turn"), expected_request()
    )
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.provider == "bedrock" and report.fallback_reason is None
    assert report.result.summary == good_answer["summary"]


def test_throttling_then_success_retries_once(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="ThrottlingException",
        service_message="Too many requests, please wait before trying again.",
        http_status_code=429,
        expected_params=expected_request(),
    )
    stubber.add_response("converse", converse_response(tool_use(good_answer)), expected_request())
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.provider == "bedrock" and report.fallback_reason is None
    assert report.attempts == 2


def test_malformed_output_is_retried_once_then_falls_back_to_builtin(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any]
) -> None:
    for _ in range(2):
        stubber.add_response(
            "converse",
            converse_response(
                [{"text": "I am not able to help with that."}], "end_turn", (1500, 12)
            ),
            expected_request(),
        )
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin" and report.model == "healthpipe-rules-v1"
    assert report.fallback_reason == "malformed_output"
    assert report.attempted == f"bedrock:{MODEL}" and report.attempts == 2
    # the failed attempts still cost tokens, and they are accounted for
    assert (report.usage.input_tokens, report.usage.output_tokens) == (3000, 24)
    assert report.usage.cost_usd > 0
    assert report.fallback_reason == "malformed_output"


def test_schema_invalid_tool_input_falls_back(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    incomplete = {k: v for k, v in good_answer.items() if k != "summary"}
    for _ in range(2):
        stubber.add_response(
            "converse", converse_response(tool_use(incomplete)), expected_request()
        )
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.fallback_reason == "schema_invalid" and "summary" in (
        report.fallback_detail or ""
    )


def test_access_denied_falls_back_without_retry(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any]
) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="AccessDeniedException",
        service_message="You don't have access to the model with the specified model ID.",
        http_status_code=403,
        expected_params=expected_request(),
    )
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin"
    assert report.fallback_reason == "access_denied" and report.attempts == 1
    assert "AccessDeniedException" in (report.fallback_detail or "")
    assert report.usage.input_tokens == 0 and report.usage.cost_usd == 0


@pytest.mark.parametrize(
    ("stop", "reason"), [("content_filtered", "refused"), ("max_tokens", "truncated")]
)
def test_stop_reasons_other_than_an_answer_fall_back(
    client: Any,
    stubber: Stubber,
    synthetic_brief: dict[str, Any],
    good_answer: dict[str, Any],
    stop: str,
    reason: str,
) -> None:
    stubber.add_response(
        "converse", converse_response([{"text": "{"}], stop=stop), expected_request()
    )
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.fallback_reason == reason and report.attempts == 1
    assert report.usage.input_tokens == 2000


def test_invented_numbers_are_dropped_from_a_bedrock_answer(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    answer = dict(good_answer)
    answer["insights"] = [*good_answer["insights"], "Average heart rate rose by 17.3% overnight."]
    stubber.add_response("converse", converse_response(tool_use(answer)), expected_request())
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.provider == "bedrock"
    assert report.result.insights == good_answer["insights"]
    (dropped,) = report.grounding["dropped"]
    assert dropped["field"] == "insights" and dropped["unsupported"] == ["17.3%"]


def test_mostly_invented_answer_falls_back_with_the_grounding_record(
    client: Any, stubber: Stubber, synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    answer = dict(good_answer)
    answer["insights"] = ["Readings rose 4123 times.", "Risk grew by 77.7%.", "Up 99999."]
    for _ in range(2):
        stubber.add_response("converse", converse_response(tool_use(answer)), expected_request())
    report = guarded(client).analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin" and report.fallback_reason == "ungrounded"
    assert len(report.grounding["llm"]["dropped"]) == 3
    assert report.grounding["dropped"] == []  # the builtin text itself is grounded


def test_client_factory_builds_a_configured_client_on_first_use() -> None:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    made = bedrock_completion.bedrock_client_factory(
        region="eu-west-3", timeout_seconds=12.0, session=session
    )()
    config = made.meta.config
    assert made.meta.region_name == "eu-west-3"
    assert (config.read_timeout, config.connect_timeout) == (12.0, 5.0)
    assert config.retries["mode"] == "standard"


def test_no_credentials_is_a_fallback_not_a_crash(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, synthetic_brief: dict[str, Any]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    factory = bedrock_completion.bedrock_client_factory(region="us-east-1")
    model = BedrockLanguageModel(MODEL, client_factory=factory)
    analyst = GuardedAnalyst(LLMAnalyst(model), sleep=lambda _: None)
    report = analyst.analyze(as_brief(synthetic_brief))
    assert report.provider == "builtin" and report.fallback_reason == "no_credentials"
    assert report.attempts == 1
