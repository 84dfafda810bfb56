"""Email delivery on one machine: an outbox folder of .eml (+ .html) files, or any SMTP server."""

from __future__ import annotations

import base64
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from healthpipe.adapters.local.files import write_bytes_atomic
from healthpipe.errors import PermanentError, TransientError
from healthpipe.ports import Mailer


def html_for_browser(message: EmailMessage) -> str | None:
    """The message's HTML part with every `cid:` image inlined as a data URI (or None)."""
    body = message.get_body(preferencelist=("html",))
    if not isinstance(body, EmailMessage):
        return None
    html = str(body.get_content())
    for part in message.walk():
        cid = str(part.get("Content-ID") or "").strip("<>")
        if cid and part.get_content_maintype() == "image":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                uri = f"data:{part.get_content_type()};base64,{base64.b64encode(data).decode()}"
                html = html.replace(f"cid:{cid}", uri)
    return html


class OutboxMailer(Mailer):
    """Writes each message as `<name>.eml`, and its HTML (images inlined) as `<name>.html`.

    The same name twice overwrites, never duplicates.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _send(self, message: EmailMessage, name: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        html = html_for_browser(message)
        if html is not None:
            write_bytes_atomic(self.folder / f"{name}.html", html.encode())
        target = self.folder / f"{name}.eml"
        write_bytes_atomic(target, message.as_bytes())
        return str(target.resolve())


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
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.ssl_context = ssl_context  # default: the system's trust store, hostname checked
        self.username, self.password = username, password
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff_seconds

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == "starttls":
            try:
                client.starttls(context=context)
            except BaseException:
                client.close()
                raise
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
            except ssl.SSLCertVerificationError as exc:
                raise PermanentError(f"SMTP server certificate not trusted: {exc}") from exc
            except smtplib.SMTPAuthenticationError as exc:
                raise PermanentError(f"SMTP authentication failed: {exc.smtp_code}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                raise PermanentError("SMTP server refused every recipient") from exc
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                if 500 <= exc.smtp_code < 600:  # permanent: a retry gets the same answer
                    raise PermanentError(
                        f"SMTP server rejected the message: {exc.smtp_code}"
                    ) from exc
                last = exc
                if attempt + 1 < self.attempts:
                    time.sleep(self.backoff * 2**attempt)
            except (smtplib.SMTPException, OSError) as exc:
                last = exc
                if attempt + 1 < self.attempts:
                    time.sleep(self.backoff * 2**attempt)
        raise TransientError(f"SMTP delivery failed after {self.attempts} attempts: {last}")
