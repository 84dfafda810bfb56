"""Email delivery on one machine: an outbox folder of .eml files, or any SMTP server."""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from healthpipe.errors import PermanentError, TransientError
from healthpipe.ports import Mailer


class OutboxMailer(Mailer):
    """Writes each message as `<name>.eml`: the same name twice overwrites, never duplicates."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _send(self, message: EmailMessage, name: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{name}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(message.as_bytes())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(target)


class SmtpMailer(Mailer):
    """SMTP with STARTTLS or implicit TLS, a timeout, and retries on transient failures."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Literal["none", "starttls", "ssl"] = "starttls",
        username: str = "",
        password: str = "",
        timeout: float = 20.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff_seconds

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            client.starttls(context=context)
        return client

    def _send(self, message: EmailMessage, name: str) -> str:
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                with self._connect() as client:
                    if self.username:
                        client.login(self.username, self.password)
                    client.send_message(message)
                return str(message["Message-ID"] or name)
            except smtplib.SMTPAuthenticationError as exc:
                raise PermanentError(f"SMTP authentication failed: {exc.smtp_code}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                raise PermanentError("SMTP server refused every recipient") from exc
            except (smtplib.SMTPException, OSError) as exc:
                last = exc
                if attempt + 1 < self.attempts:
                    time.sleep(self.backoff * 2**attempt)
        raise TransientError(f"SMTP delivery failed after {self.attempts} attempts: {last}")
