"""`TESSERA_SMTP_*`: outgoing mail is off without a host, and a configuration that cannot work
(no sender, half a login, clear text across the network in production) is refused (issue 15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tessera.config import ConfigError, load_settings

PRODUCTION = {"env": "production", "issuer": "https://id.example.test"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("TESSERA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_mail_is_off_by_default() -> None:
    settings = load_settings()
    assert not settings.mail_enabled
    assert (settings.smtp_port, settings.smtp_security, settings.smtp_timeout) == (
        587,
        "starttls",
        10,
    )


def test_an_empty_host_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_SMTP_HOST", "")
    assert not load_settings().mail_enabled


def test_the_environment_configures_mail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("from-a-file\n", encoding="utf-8")
    for name, value in {
        "TESSERA_SMTP_HOST": "smtp.example.test",
        "TESSERA_SMTP_PORT": "465",
        "TESSERA_SMTP_SECURITY": "tls",
        "TESSERA_SMTP_USERNAME": "tessera",
        "TESSERA_SMTP_PASSWORD_FILE": str(secret),
        "TESSERA_SMTP_FROM": "Tessera <no-reply@example.test>",
        "TESSERA_SMTP_TIMEOUT": "2.5",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.mail_enabled
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "from-a-file"
    assert (settings.smtp_port, settings.smtp_security, settings.smtp_timeout) == (465, "tls", 2.5)
    assert settings.redacted()["smtp_password"] == "********"


def test_a_host_needs_a_sender() -> None:
    with pytest.raises(ConfigError, match="TESSERA_SMTP_FROM is required with TESSERA_SMTP_HOST"):
        load_settings(smtp_host="smtp.example.test")


@pytest.mark.parametrize(
    "sender", ["nobody", "a@example.test, b@example.test", "a@example.test\r\nBcc: x@y.test"]
)
def test_a_sender_is_one_address(sender: str) -> None:
    with pytest.raises(ConfigError, match="TESSERA_SMTP_FROM: not one e-mail address"):
        load_settings(smtp_host="smtp.example.test", smtp_from=sender)


@pytest.mark.parametrize("host", ["smtp.example.test:587", "smtp example", "a/b"])
def test_a_host_is_a_name_or_an_address(host: str) -> None:
    with pytest.raises(ConfigError, match="TESSERA_SMTP_HOST: not a host name or IP address"):
        load_settings(smtp_host=host, smtp_from="a@example.test")


def test_an_ipv6_host_loses_its_brackets() -> None:
    assert load_settings(smtp_host="[::1]", smtp_from="a@example.test").smtp_host == "::1"


@pytest.mark.parametrize("login", [{"smtp_username": "u"}, {"smtp_password": "p"}])
def test_a_login_needs_both_username_and_password(login: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="set both TESSERA_SMTP_USERNAME and TESSERA_SMTP_PASSWORD"):
        load_settings(smtp_host="smtp.example.test", smtp_from="a@example.test", **login)


def test_an_unknown_security_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="TESSERA_SMTP_SECURITY"):
        load_settings(smtp_host="smtp.example.test", smtp_from="a@example.test", smtp_security="ssl")


def test_production_refuses_clear_text_mail_across_the_network() -> None:
    with pytest.raises(ConfigError, match="TESSERA_SMTP_SECURITY=none is refused"):
        load_settings(
            **PRODUCTION,
            smtp_host="smtp.example.test",
            smtp_from="a@example.test",
            smtp_security="none",
        )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.25"])
def test_production_allows_clear_text_to_a_loopback_relay(host: str) -> None:
    settings = load_settings(
        **PRODUCTION, smtp_host=host, smtp_from="a@example.test", smtp_security="none"
    )
    assert settings.mail_enabled


def test_development_allows_clear_text_anywhere() -> None:
    settings = load_settings(
        smtp_host="smtp.example.test", smtp_from="a@example.test", smtp_security="none"
    )
    assert settings.smtp_security == "none"
