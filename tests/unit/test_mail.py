"""Outgoing mail against a real SMTP server (aiosmtpd on loopback): headers and body, STARTTLS
and implicit TLS with certificate checks, login, refusals, the background queue (issue 15)."""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tessera.config import load_settings
from tessera.manage.mail import (
    BackgroundMailer,
    DisabledMailer,
    Mail,
    MailError,
    SmtpConfig,
    SmtpMailer,
    mailer_for,
)
from tests.support.server import free_port
from tests.support.smtp import SmtpServer, first_link, self_signed, smtp_server

SENDER = "Tessera <no-reply@id.example.test>"
HELLO = Mail("Alice <alice@example.test>", "Hello", "Open https://id.example.test/x?t=1 now.\n")


def plain(server: SmtpServer, **kw: object) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(server.host, SENDER, port=server.port, security="none", timeout=5, **kw)  # type: ignore[arg-type]
    )


# --- the message -------------------------------------------------------------------------------


def test_a_message_arrives_with_its_headers_and_body() -> None:
    with smtp_server() as server:
        plain(server).send(HELLO)
        [message] = server.wait_for(1)
    assert message["From"] == SENDER
    assert message["To"] == "Alice <alice@example.test>"
    assert message["Subject"] == "Hello"
    assert abs(time.time() - parsedate_to_datetime(message["Date"]).timestamp()) < 60
    assert message["Message-ID"].endswith("@id.example.test>")
    assert first_link(message) == "https://id.example.test/x?t=1"
    assert server.envelopes == [("no-reply@id.example.test", ["alice@example.test"])]


def test_non_ascii_subject_and_body_and_an_html_alternative() -> None:
    mail = Mail("zoë@example.test", "Réinitialiser", "Bonjour Zoë\n", html="<p>Bonjour</p>")
    with smtp_server() as server:
        plain(server).send(mail)
        [message] = server.wait_for(1)
    assert message["Subject"] == "Réinitialiser"
    assert message.get_body(("plain",)).get_content().strip() == "Bonjour Zoë"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().strip() == "<p>Bonjour</p>"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("alice@example.test\r\nBcc: eve@example.test", "Hello"),
        ("alice@example.test", "Hello\nBcc: eve@example.test"),
        ("alice@example.test", "Hello\r"),
        ("alice@example.test, eve@example.test", "Hello"),
        ("not an address", "Hello"),
        ("alice@example.test", ""),
    ],
)
def test_header_injection_and_bad_headers_are_refused(to: str, subject: str) -> None:
    with pytest.raises(ValueError):
        Mail(to, subject, "body")


# --- transport security and login ------------------------------------------------------------


def test_starttls_with_a_trusted_certificate_and_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert))  # the client's trust store
    with smtp_server(starttls=tls.server_context(), login=("mailer", "pa55-word")) as server:
        mailer = SmtpMailer(
            SmtpConfig(server.host, SENDER, port=server.port, username="mailer", password="pa55-word")
        )
        mailer.send(HELLO)
        assert server.wait_for(1)[0]["Subject"] == "Hello"


def test_starttls_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)  # not in the trust store
    with smtp_server(starttls=tls.server_context()) as server:
        mailer = SmtpMailer(SmtpConfig(server.host, SENDER, port=server.port, timeout=5))
        with pytest.raises(MailError, match="certificate is not trusted"):
            mailer.send(HELLO)
        assert server.messages == []


def test_starttls_is_required_when_configured_never_plain_text() -> None:
    with smtp_server() as server:  # offers no STARTTLS
        mailer = SmtpMailer(SmtpConfig(server.host, SENDER, port=server.port, timeout=5))
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            mailer.send(HELLO)
        assert server.messages == []


def test_implicit_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert))
    with smtp_server(implicit_tls=tls.server_context()) as server:
        config = SmtpConfig(server.host, SENDER, port=server.port, security="tls", timeout=5)
        SmtpMailer(config).send(HELLO)
        assert len(server.wait_for(1)) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_is_a_mail_error_without_the_password() -> None:
    with smtp_server(login=("mailer", "right-password")) as server:
        mailer = plain(server, username="mailer", password="wrong-password-XYZ")
        with pytest.raises(MailError) as caught:
            mailer.send(HELLO)
    assert "refused the login (535)" in str(caught.value)
    assert "wrong-password-XYZ" not in str(caught.value)
    assert "wrong-password-XYZ" not in repr(mailer.config)


# --- failures ----------------------------------------------------------------------------------


def test_a_refused_recipient_is_a_mail_error() -> None:
    with smtp_server(refuse=frozenset({"alice@example.test"})) as server:
        mailer = plain(server)
        with pytest.raises(MailError, match=r"refused the recipient \(550\)"):
            mailer.send(HELLO)
        assert server.messages == []


def test_an_unreachable_server_is_a_mail_error() -> None:
    config = SmtpConfig("127.0.0.1", SENDER, port=free_port(), security="none", timeout=2)
    with pytest.raises(MailError, match=r"cannot reach the SMTP server 127\.0\.0\.1:\d+"):
        SmtpMailer(config).send(HELLO)


def test_a_silent_server_times_out() -> None:
    import socket

    with socket.socket() as listener:  # accepts, never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        config = SmtpConfig("127.0.0.1", SENDER, port=port, security="none", timeout=0.5)
        with pytest.raises(MailError, match="did not answer within 0.5 s"):
            SmtpMailer(config).send(HELLO)


# --- in the background -------------------------------------------------------------------------


def test_background_mailer_delivers_and_survives_a_failure() -> None:
    refused = Mail("bob@example.test", "To Bob", "text")
    with smtp_server(refuse=frozenset({"bob@example.test"})) as server:
        mailer = BackgroundMailer(plain(server))
        with capture_logs() as logs:
            mailer.send(refused)
            mailer.send(HELLO)
            assert mailer.close(timeout=10)
        assert [m["To"] for m in server.wait_for(1)] == ["Alice <alice@example.test>"]
    assert (mailer.sent, mailer.failed, mailer.dropped) == (1, 1, 0)
    [failure] = [entry for entry in logs if entry["event"] == "mail.failed"]
    assert "refused the recipient" in failure["error"]
    assert failure["log_level"] == "warning"


class _Gate:
    """A mailer that waits until the test opens the gate (a slow SMTP server)."""

    enabled = True

    def __init__(self) -> None:
        self.open = threading.Event()
        self.got: list[Mail] = []

    def send(self, message: Mail) -> None:
        self.open.wait(10)
        self.got.append(message)


def test_send_does_not_wait_for_the_server_and_a_full_queue_drops() -> None:
    gate = _Gate()
    mailer = BackgroundMailer(gate, capacity=2)
    started = time.monotonic()
    with capture_logs() as logs:
        for _ in range(5):  # one in the worker's hands, two queued, two dropped (or three)
            mailer.send(HELLO)
    assert time.monotonic() - started < 1
    assert mailer.dropped >= 2
    assert any(e["event"] == "mail.dropped" for e in logs)
    gate.open.set()
    assert mailer.close(timeout=10)
    assert len(gate.got) == 5 - mailer.dropped


def test_close_gives_up_after_its_timeout_and_later_mail_is_dropped() -> None:
    gate = _Gate()
    mailer = BackgroundMailer(gate)
    mailer.send(HELLO)
    assert not mailer.close(timeout=0.2)  # the worker is still stuck on the first message
    mailer.send(HELLO)
    assert mailer.dropped == 1
    gate.open.set()


def test_an_unused_background_mailer_starts_no_thread() -> None:
    before = set(threading.enumerate())
    mailer = BackgroundMailer(DisabledMailer())
    assert [t for t in set(threading.enumerate()) - before if t.name == "tessera-mail"] == []
    assert mailer.close(timeout=1)


# --- configured or not -------------------------------------------------------------------------


def test_without_smtp_the_mailer_is_disabled_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSERA_SMTP_HOST", raising=False)
    mailer = mailer_for(load_settings())
    assert not mailer.enabled
    with pytest.raises(MailError, match="e-mail is off"):
        mailer.send(HELLO)


def test_the_configured_mailer_sends_in_the_background() -> None:
    with smtp_server() as server:
        settings = load_settings(
            smtp_host=server.host, smtp_port=server.port, smtp_from=SENDER, smtp_security="none"
        )
        mailer = mailer_for(settings)
        assert mailer.enabled and isinstance(mailer, BackgroundMailer)
        mailer.send(HELLO)
        assert server.wait_for(1)[0]["From"] == SENDER
        assert mailer.close()

