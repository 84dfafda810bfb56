"""End to end: the pipeline's notify stage sends through SmtpMailer to a real SMTP server
(aiosmtpd on 127.0.0.1); the received bytes are parsed back with the `email` package."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from healthpipe.adapters.local.mailer import SmtpMailer
from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.errors import PermanentError
from healthpipe.orchestration.runs import run_files
from healthpipe.synthetic import SyntheticSpec, generate_csv


class Inbox:
    """An aiosmtpd handler that keeps what it receives; can answer the next DATA with a code."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.next_replies: list[str] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.next_replies:
            return self.next_replies.pop(0)
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
            return AuthResult(success=data.password == b"s3cret-from-env", handled=False)
        return AuthResult(success=False, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=inbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


HOSTILE_USER = '<script>alert(1)</script>=HYPERLINK("http://evil","x")'


def hostile_vitals(path: Path) -> Path:
    """Synthetic vitals whose first user id is hostile markup plus a formula."""
    generate_csv(SyntheticSpec(rows=600, users=6, seed=11), path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("user_id")
    first = next(line.split(",")[column] for line in lines[1:] if line.split(",")[column])
    quoted = '"' + HOSTILE_USER.replace('"', '""') + '"'
    patched = [lines[0]] + [
        ",".join(quoted if i == column and cell == first else cell for i, cell in enumerate(row))
        for row in (line.split(",") for line in lines[1:])
    ]
    path.write_text("\n".join(patched) + "\n")
    return path


class Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.srcs: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.in_style = tag == "style"
        if tag == "img":
            self.srcs.append(str(dict(attrs).get("src")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if not self.in_style:  # a <style> block's CSS is not shown text
            self.text.append(data)


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_pipeline_report_arrives_over_smtp_intact(
    smtp: tuple[Inbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    # GIVEN SMTP settings with the credentials coming from the environment
    monkeypatch.setenv("HEALTHPIPE_SMTP_USERNAME", "healthpipe")
    monkeypatch.setenv("HEALTHPIPE_SMTP_PASSWORD", "s3cret-from-env")
    settings = load_settings(
        {
            "workspace": tmp_path / "ws",
            "mailer": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "email_to": ["ward@example.org", "lead@example.org"],
            "email_from": "healthpipe@example.org",
        }
    )
    source = hostile_vitals(tmp_path / f"ward-{HOSTILE_USER[:8]}Zoë.csv")
    runtime = build_local(settings)
    try:
        # WHEN a file runs through the pipeline
        (result,) = run_files(runtime, [source])
    finally:
        runtime.close()
    assert result.status == "processed", result.error
    assert inbox.logins and inbox.logins[0] == (b"healthpipe", b"s3cret-from-env")

    # THEN an alert and the report arrived, to every recipient
    received = {str(parse(raw)["Subject"]).split(" ")[0]: (to, raw) for to, raw in inbox.messages}
    assert set(received) == {"[ALERT]", "healthpipe"}
    rcpts, raw = received["healthpipe"]
    assert sorted(rcpts) == ["lead@example.org", "ward@example.org"]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert len(raw) <= 10 * 1024 * 1024
    message = parse(raw)
    subject = str(message["Subject"])
    assert result.dataset_id and result.dataset_id in subject
    assert "worst severity: high" in subject

    # structure: alternative -> text/plain, related -> html + images
    assert message.get_content_type() == "multipart/alternative"
    text_part, related = list(message.iter_parts())
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = list(related.iter_parts())
    assert html_part.get_content_type() == "text/html"
    attached = {str(p["Content-ID"]).strip("<>"): p for p in images}
    html = str(html_part.get_content())
    page = Visible()
    page.feed(html)
    cids = [s.removeprefix("cid:") for s in page.srcs]
    assert len(cids) >= 3 and all(s.startswith("cid:") for s in page.srcs)
    for cid in cids:
        assert cid in attached, cid
        assert attached[cid].get_content_type() == "image/png"
        payload = attached[cid].get_payload(decode=True)
        assert isinstance(payload, bytes) and payload[:4] == b"\x89PNG"

    # the text part carries the same numbers as the HTML
    text = str(text_part.get_content())
    visible = " ".join(page.text)
    numbers = re.compile(r"\d[\d,.]*\d%?|\d%?")
    missing = set(numbers.findall(visible)) - set(numbers.findall(text))
    assert not missing, sorted(missing)
    rows_in = f"{result.rows['input']:,}"
    assert f"rows in: {rows_in}" in text.lower() and rows_in in visible

    # hostile values: the file name is escaped in HTML (plain text shows it inertly), the
    # hostile user id appears in neither part (pseudonymised), non-ASCII survives
    assert "script" not in page.tags
    assert "ward-&lt;script&gt;Zoë.csv" in html and "<script>" not in html
    assert "ward-<script>Zoë.csv" in text
    for part in (text, html):
        assert 'HYPERLINK("http' not in part.replace("&#34;", '"')
        assert "alert(1)" not in part


def test_smtp_mailer_retries_a_transient_reply_and_stops_on_a_permanent_one(
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    mailer = SmtpMailer("127.0.0.1", port, security="none", attempts=3, backoff_seconds=0.0)
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "hello", "a@example.org", "b@example.org"
    message.set_content("body")
    inbox.next_replies = ["451 try again later"]
    mailer.send(message, name="one")
    assert len(inbox.messages) == 1  # second attempt delivered
    inbox.next_replies = ["554 rejected for policy reasons"] * 3
    with pytest.raises(PermanentError):
        mailer.send(message, name="two")
    assert len(inbox.messages) == 1 and len(inbox.next_replies) == 2  # no retry after a 5xx


def test_smtp_mailer_reports_wrong_credentials_as_permanent(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mailer = SmtpMailer(
        "127.0.0.1", port, security="none", username="u", password="wrong", attempts=3, timeout=10
    )
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "x", "a@example.org", "b@example.org"
    message.set_content("body")
    with pytest.raises(PermanentError, match="authentication"):
        mailer.send(message, name="x")
    # smtplib tries each advertised mechanism (PLAIN, LOGIN) once; 3 attempts would make 6
    assert 1 <= len(inbox.logins) <= 2 and inbox.messages == []
