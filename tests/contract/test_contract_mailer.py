"""Mailer contract: SES send_raw_email (moto over HTTP) and the .eml outbox deliver the same
MIME message (text + HTML alternatives)."""

from __future__ import annotations

import email
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import moto_env
import pytest

from healthpipe.adapters.aws.mailer import SesMailer
from healthpipe.adapters.local.mailer import OutboxMailer
from healthpipe.errors import PermanentError
from healthpipe.ports import Mailer

Sent = Callable[[], list[bytes]]


@pytest.fixture(params=["local", "aws"])
def mailer_and_sent(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Mailer, Sent]:
    if request.param == "local":
        outbox = tmp_path / "outbox"
        return OutboxMailer(outbox), lambda: [p.read_bytes() for p in sorted(outbox.glob("*.eml"))]
    aws: dict[str, Any] = request.getfixturevalue("aws")
    before = len(moto_env.sent_emails())

    def sent() -> list[bytes]:
        return [m.raw_data.encode() for m in moto_env.sent_emails()[before:]]

    aws["ses"].verify_email_identity(EmailAddress=moto_env.SENDER)
    return SesMailer(aws["ses"]), sent


def report_message(sender: str = moto_env.SENDER) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "healthpipe report d1"
    message["From"] = sender
    message["To"] = moto_env.RECIPIENT
    message.set_content("3 findings, worst high")
    message.add_alternative("<p>3 findings, worst <b>high</b></p>", subtype="html")
    return message


def test_sends_one_mime_message_with_text_and_html(mailer_and_sent: tuple[Mailer, Sent]) -> None:
    mailer, sent = mailer_and_sent
    receipt = mailer.send(report_message(), name="report-d1")
    assert receipt
    messages = sent()
    assert len(messages) == 1
    parsed = email.message_from_bytes(messages[0])
    assert parsed["Subject"] == "healthpipe report d1"
    assert parsed["To"] == moto_env.RECIPIENT
    types = [part.get_content_type() for part in parsed.walk()]
    assert "text/plain" in types and "text/html" in types


def test_a_message_needs_a_recipient(mailer_and_sent: tuple[Mailer, Sent]) -> None:
    mailer, sent = mailer_and_sent
    message = report_message()
    del message["To"]
    with pytest.raises(ValueError, match="recipient"):
        mailer.send(message, name="nobody")
    assert sent() == []


def test_ses_refusal_is_permanent(aws: dict[str, Any]) -> None:
    mailer = SesMailer(aws["ses"])
    with pytest.raises(PermanentError, match="MessageRejected"):
        mailer.send(report_message(sender="stranger@unverified.example"), name="x")


def test_ses_configuration_set_is_passed(aws: dict[str, Any]) -> None:
    from botocore.stub import ANY, Stubber

    mailer = SesMailer(aws["ses"], configuration_set="healthpipe-events")
    with Stubber(aws["ses"]) as stub:
        stub.add_response(
            "send_raw_email",
            {"MessageId": "m-1"},
            {
                "Source": moto_env.SENDER,
                "Destinations": [moto_env.RECIPIENT],
                "RawMessage": {"Data": ANY},
                "ConfigurationSetName": "healthpipe-events",
            },
        )
        assert mailer.send(report_message(), name="r") == "m-1"
