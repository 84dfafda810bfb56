"""Email through Amazon SES: the notify stage's MIME message, sent raw."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from healthpipe.adapters.aws.clients import translate
from healthpipe.ports import Mailer

IAM_ACTIONS: tuple[str, ...] = ("ses:SendRawEmail",)


class SesMailer(Mailer):
    def __init__(self, client: Any, *, configuration_set: str = "") -> None:
        self.client = client
        self.configuration_set = configuration_set

    def _send(self, message: EmailMessage, name: str) -> str:
        recipients = [
            address
            for _, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))
            if address
        ]
        request: dict[str, Any] = {
            "Source": parseaddr(str(message["From"]))[1],
            "Destinations": recipients,
            "RawMessage": {"Data": message.as_bytes()},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_raw_email(**request)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"SES send_raw_email ({name})") from exc
        return str(response["MessageId"])
