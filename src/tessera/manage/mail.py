"""Outgoing e-mail over SMTP (RFC 5321) for password-reset links and account notices.

`SmtpMailer` sends one message per connection, with STARTTLS (RFC 3207) or implicit TLS
(RFC 8314 §3.3) and certificate verification against the system's trust store, a login when
a username is set, and a timeout on every network step. `BackgroundMailer` hands messages to
one daemon thread through a bounded queue, so a slow or dead SMTP server never holds up a
request or the event loop; a failure is logged (never the message body: it may carry a reset
link, docs/security.md rule 23). `DisabledMailer` stands in when `TESSERA_SMTP_HOST` is unset.
"""

from __future__ import annotations

import queue
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog

from tessera.config import check_mail_address

if TYPE_CHECKING:
    from tessera.config import Settings

__all__ = [
    "BackgroundMailer",
    "DisabledMailer",
    "Mail",
    "MailError",
    "Mailer",
    "SmtpConfig",
    "SmtpMailer",
    "mailer_for",
]

Security = Literal["starttls", "tls", "none"]
_MAX_SUBJECT = 250
_STOP = object()


class MailError(Exception):
    """A message could not be sent; the message says why (never a secret)."""


@dataclass(frozen=True, slots=True)
class Mail:
    """One message to one person. Building it refuses what could add headers."""

    to: str  # `alice@example.com` or `Alice <alice@example.com>`
    subject: str
    text: str
    html: str | None = None

    def __post_init__(self) -> None:
        # A line break in a header value would start a header of the sender's choosing.
        if any(c in self.to or c in self.subject for c in "\r\n\0"):
            raise ValueError("a mail's recipient and subject must not contain line breaks")
        try:
            check_mail_address(self.to)
        except ValueError as exc:
            raise ValueError(f"the recipient: {exc}") from None
        if not self.subject.strip() or len(self.subject) > _MAX_SUBJECT:
            raise ValueError(f"a mail's subject has 1 to {_MAX_SUBJECT} characters")


class Mailer(Protocol):
    @property
    def enabled(self) -> bool:
        """False when e-mail is not configured: `send` then raises `MailError`."""

    def send(self, message: Mail) -> None: ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    sender: str  # the From header
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        if settings.smtp_host is None or settings.smtp_from is None:
            raise MailError("e-mail is off: set TESSERA_SMTP_HOST and TESSERA_SMTP_FROM")
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            sender=settings.smtp_from,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            timeout=settings.smtp_timeout,
        )

    @property
    def where(self) -> str:
        return f"the SMTP server {self.host}:{self.port}"


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The RFC 5322 message: From, To, Subject, Date, Message-ID, text (and HTML) body."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    # The sender's domain, not `socket.getfqdn()`, which may wait on DNS.
    domain = getaddresses([sender])[0][1].rpartition("@")[2]
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


class SmtpMailer:
    """Sends each message on a connection of its own (reset mails are rare)."""

    enabled = True

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def send(self, message: Mail) -> None:
        """Deliver `message` to the SMTP server; `MailError` if it is not accepted."""
        email = build_message(message, self.config.sender)
        try:
            with self._connect() as smtp:
                if self.config.username is not None:
                    smtp.login(self.config.username, self.config.password or "")
                smtp.send_message(email)
        except OSError as exc:  # smtplib's and ssl's errors are OSErrors
            raise MailError(self._describe(exc)) from None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        if cfg.security == "tls":
            return smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        if cfg.security == "starttls":
            try:
                # Refused when the server does not offer it: never fall back to clear text.
                smtp.starttls(context=ssl.create_default_context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _describe(self, exc: OSError) -> str:
        """What went wrong, for a log line: the server's reply or the network error, never
        the password (`login` errors give only the code)."""
        where = self.config.where
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"{where} refused the login ({exc.smtp_code}): check TESSERA_SMTP_USERNAME"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            if "STARTTLS" in str(exc).upper():
                return f"{where} does not offer STARTTLS (TESSERA_SMTP_SECURITY=starttls)"
            return f"{where} cannot take this message: {exc}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = sorted({code for code, _ in exc.recipients.values()})
            return f"{where} refused the recipient ({', '.join(map(str, codes))})"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"{where} answered {exc.smtp_code}: {_reply(exc.smtp_error)}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"{where}: its TLS certificate is not trusted ({exc.verify_message})"
        if isinstance(exc, ssl.SSLError):
            return f"{where}: TLS failed ({exc.reason or exc})"
        # smtplib reports a read that timed out as a disconnection caused by the timeout.
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return f"{where} did not answer within {self.config.timeout:g} s"
        return f"cannot reach {where}: {exc.strerror or exc}"


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())[:200]


class BackgroundMailer:
    """Queues messages for one daemon thread that sends them with `inner`.

    `send` never blocks and never raises for delivery: a full queue drops the message and a
    failed delivery is logged. The thread starts with the first message (an idle node keeps
    none) and `close` lets it finish the queue, waiting at most `timeout` seconds.
    """

    enabled = True

    def __init__(self, inner: Mailer, *, capacity: int = 100) -> None:
        self._inner = inner
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._log = structlog.get_logger("tessera.mail")
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def send(self, message: Mail) -> None:
        with self._lock:
            if self._closed:
                self.dropped += 1
                self._log.warning("mail.dropped", reason="the mailer is closed")
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tessera-mail", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(message)
            except queue.Full:
                self.dropped += 1
                self._log.warning("mail.dropped", reason="the mail queue is full")

    def close(self, timeout: float = 10.0) -> bool:
        """Send what is queued and stop the thread; False if it did not finish in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return False
        thread.join(max(0.0, deadline - time.monotonic()))
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._inner.send(item)
            except MailError as exc:
                self.failed += 1
                self._log.warning("mail.failed", error=str(exc))
            except Exception:  # a bug must not kill the thread that sends every later mail
                self.failed += 1
                self._log.exception("mail.failed")
            else:
                self.sent += 1


class DisabledMailer:
    """E-mail is not configured: features that need it say they are off."""

    enabled = False

    def send(self, message: Mail) -> None:
        raise MailError("e-mail is off: set TESSERA_SMTP_HOST and TESSERA_SMTP_FROM")


def mailer_for(settings: Settings, *, capacity: int = 100) -> Mailer:
    """The node's mailer: SMTP in the background when configured, else `DisabledMailer`."""
    if not settings.mail_enabled:
        return DisabledMailer()
    return BackgroundMailer(SmtpMailer(SmtpConfig.from_settings(settings)), capacity=capacity)
