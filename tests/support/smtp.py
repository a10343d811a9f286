"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), and what tests read from its mail.

`smtp_server()` starts one on a free port and yields an `SmtpServer` that keeps every message
it accepts, parsed (`email.message.EmailMessage`); `wait_for` waits until enough have arrived.
It can offer STARTTLS or speak implicit TLS with a certificate from `self_signed`, ask for a
login, and refuse chosen recipients (a real 550, for failure paths).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.server import free_port

__all__ = ["SmtpServer", "TlsFiles", "first_link", "self_signed", "smtp_server"]

_LINK = re.compile(r"https?://[^\s<>\"']+")


class SmtpServer:
    """What the server received; safe to read from the test's thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._messages: list[EmailMessage] = []
        self._envelopes: list[tuple[str, list[str]]] = []
        self._arrived = threading.Condition()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._arrived:
            return list(self._messages)

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        """(MAIL FROM, RCPT TO) of each accepted message."""
        with self._arrived:
            return list(self._envelopes)

    def add(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        with self._arrived:
            self._messages.append(message)
            self._envelopes.append((sender, recipients))
            self._arrived.notify_all()

    def wait_for(
        self,
        count: int = 1,
        predicate: Callable[[EmailMessage], bool] | None = None,
        timeout: float = 10.0,
    ) -> list[EmailMessage]:
        """The messages matching `predicate` (all by default), once there are `count` of them;
        AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [m for m in self._messages if predicate is None or predicate(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(found)} of {count} messages arrived in {timeout} s: "
                        f"{[m['Subject'] for m in self._messages]}"
                    )
                self._arrived.wait(left)


class _Handler:
    def __init__(self, server: SmtpServer, refuse: frozenset[str]) -> None:
        self.server = server
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.add(parsed, envelope.mail_from, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.expected = (username.encode(), password.encode())

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            (auth_data.login, auth_data.password) == self.expected
        )
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
    refuse: frozenset[str] = frozenset(),
) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1: plain by default; `starttls` offers STARTTLS with that
    server context (and requires it), `implicit_tls` speaks TLS from the first byte; `login`
    requires AUTH with that username and password; `refuse` answers 550 to those recipients."""
    server = SmtpServer("127.0.0.1", free_port())
    options: dict[str, Any] = {}
    if starttls is not None:
        options.update(tls_context=starttls, require_starttls=True)
    if login is not None:
        options.update(authenticator=_Authenticator(*login), auth_required=True)
        options.update(auth_require_tls=starttls is not None)
    controller = Controller(
        _Handler(server, frozenset(r.lower() for r in refuse)),
        hostname=server.host,
        port=server.port,
        ssl_context=implicit_tls,
        **options,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def first_link(message: EmailMessage) -> str:
    """The first http(s) URL in the message's text (or HTML) body."""
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None, "the message has no text body"
    found = _LINK.search(part.get_content())
    assert found is not None, "the message has no link"
    return found.group(0)


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(directory: Path) -> TlsFiles:
    """Write a fresh self-signed certificate (P-256) to `directory`; a client trusts it when
    `SSL_CERT_FILE` names `cert` (OpenSSL's default verify paths)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tessera test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(alt, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
