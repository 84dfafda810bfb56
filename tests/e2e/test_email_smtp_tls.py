"""SmtpMailer over TLS against a real aiosmtpd server on 127.0.0.1: STARTTLS and implicit TLS,
with a throwaway certificate the client trusts explicitly (and a client that does not)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from healthpipe.adapters.local.mailer import SmtpMailer
from healthpipe.errors import PermanentError

pytestmark = pytest.mark.clock  # the test certificates are valid from a few minutes before now


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        self.tls.append(session.ssl is not None)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def serve(**kwargs: Any) -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    yield from serve(tls_context=server_context(certificate), require_starttls=True)


@pytest.fixture
def implicit_tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    yield from serve(ssl_context=server_context(certificate))


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "tls", "a@example.org", "b@example.org"
    msg.set_content("over TLS")
    return msg


def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def test_starttls_delivers_over_an_encrypted_session(
    starttls_server: tuple[Inbox, int], certificate: tuple[Path, Path]
) -> None:
    inbox, port = starttls_server
    mailer = SmtpMailer(
        "127.0.0.1", port, security="starttls", ssl_context=trusting(certificate), timeout=10
    )
    mailer.send(message(), name="m")
    assert inbox.tls == [True] and b"over TLS" in inbox.messages[0]


def test_implicit_tls_delivers(
    implicit_tls_server: tuple[Inbox, int], certificate: tuple[Path, Path]
) -> None:
    inbox, port = implicit_tls_server
    mailer = SmtpMailer(
        "127.0.0.1", port, security="ssl", ssl_context=trusting(certificate), timeout=10
    )
    mailer.send(message(), name="m")
    assert len(inbox.messages) == 1


def test_an_untrusted_certificate_is_refused(starttls_server: tuple[Inbox, int]) -> None:
    inbox, port = starttls_server
    mailer = SmtpMailer(
        "127.0.0.1", port, security="starttls", attempts=3, backoff_seconds=0.0, timeout=10
    )
    with pytest.raises(PermanentError, match="certificate"):
        mailer.send(message(), name="m")
    assert inbox.messages == []
