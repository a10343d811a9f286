"""Configuration from the environment: `TESSERA_…`, `__` for nesting, `…_FILE` for secrets.

The key-encryption key (`TESSERA_SECRET_KEY`) protects signing keys at rest and keys the
client-secret hashes. In development it is generated into `./var/secret.key` (mode 0600) when
unset; with `TESSERA_ENV=production` Tessera refuses to start without it.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import secrets
import warnings
from email.utils import getaddresses
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tessera.shared.database_url import configured_or_sqlite
from tessera.shared.sealing import derive_key
from tessera.shared.settings import check_issuer, is_loopback_host, read_secret_files

__all__ = ["ConfigError", "Settings", "check_mail_address", "load_settings"]

_SECRET_FIELDS = ("secret_key", "database_url", "redis_url", "smtp_password")
_POSTGRES_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg")
_HOST_NAME = re.compile(r"^[A-Za-z0-9._-]{1,253}$")


class ConfigError(ValueError):
    """The configuration cannot work; the message says what to set."""


class Settings(BaseSettings):
    """Tessera's configuration. Every field is `TESSERA_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    env: Literal["development", "production"] = "development"
    issuer: str = "http://127.0.0.1:8000"
    data_dir: Path = Path("./var")
    database_url: SecretStr | None = None
    secret_key: SecretStr | None = None
    redis_url: SecretStr | None = None
    redis_prefix: str = Field("tessera", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    trusted_proxies: list[str] = Field(default_factory=list)
    metrics_allow: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # Threads for blocking work (database, password hashing); None: 2 per CPU, at least 4.
    worker_threads: int | None = Field(None, ge=1, le=1000)
    code_ttl: int = Field(60, ge=5, le=600)
    # How soon an app's jwks_uri may be fetched again for an unknown kid (a rotated key), or
    # after a failed fetch: seconds (docs/client-authentication.md).
    jwks_refetch_interval: float = Field(10.0, ge=0, le=3600)
    par_ttl: int = Field(60, ge=5, le=600)  # a pushed request's request_uri (RFC 9126 §2.2)
    # RFC 8628 §3.2: how long a device code and its user code live, and the polling interval.
    device_code_ttl: int = Field(600, ge=5, le=3600)
    device_poll_interval: int = Field(5, ge=1, le=60)
    # RFC 9449 §8: DPoP proofs must carry a server nonce (handed out in `DPoP-Nonce`), which
    # bounds how long a pre-made proof works (§11.2). Off: proofs are bounded by `iat` only.
    dpop_nonce: bool = False
    access_token_ttl: int = Field(3600, ge=30, le=86400)
    id_token_ttl: int = Field(3600, ge=30, le=86400)
    refresh_token_ttl: int = Field(14 * 86400, ge=60)
    refresh_token_absolute_ttl: int = Field(90 * 86400, ge=60)
    refresh_grace_seconds: float = Field(2.0, ge=0, le=60)
    session_ttl: int = Field(12 * 3600, ge=60)
    login_max_failures: int = Field(5, ge=1)
    login_failure_window: int = Field(900, ge=10)
    login_max_failures_per_address: int = Field(50, ge=1)
    # The wait after the free failures; it doubles with each further failure, up to the window.
    login_first_delay: int = Field(30, ge=1)
    # How many identity domains' services a node keeps in memory (least recently used go).
    domain_cache_size: int = Field(256, ge=1, le=100000)
    # Create the demo domain (published passwords) on an empty database: `tessera serve --demo`.
    demo: bool = False
    # Request bodies (RFC 9110 §15.5.14): protocol and form endpoints, and the admin API.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    admin_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Outgoing e-mail (password reset links, account notices); no host: e-mail is off.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None  # the sender: `no-reply@example.com` or `Name <addr>`
    # starttls (RFC 3207, port 587), tls (implicit TLS, RFC 8314, port 465), none (loopback)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout: float = Field(10, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """`TESSERA_X_FILE=/path` sets the secret X from a file (Docker/Kubernetes secrets)."""
        return read_secret_files(data, "TESSERA_", _SECRET_FIELDS, ConfigError)

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        # RFC 8414 §2: https, no query or fragment; http only on loopback for development.
        return check_issuer(value)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_database_url(value.get_secret_value())
        return value

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("smtp_host", "smtp_username", "smtp_from", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `TESSERA_SMTP_HOST=` in a compose file means "no e-mail", not a host named "".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("smtp_host")
    @classmethod
    def _check_smtp_host(cls, value: str | None) -> str | None:
        """A host name or an IP address, without a port (that is TESSERA_SMTP_PORT)."""
        if value is None:
            return None
        bare = value.strip().removeprefix("[").removesuffix("]")  # socket wants no brackets
        if not _is_ip(bare) and not _HOST_NAME.match(bare):
            raise ValueError("not a host name or IP address (the port is TESSERA_SMTP_PORT)")
        return bare

    @field_validator("smtp_from")
    @classmethod
    def _check_smtp_from(cls, value: str | None) -> str | None:
        if value is not None:
            check_mail_address(value)
        return value

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.env == "production" and not self.issuer.startswith("https://"):
            raise ValueError("TESSERA_ISSUER must be https:// with TESSERA_ENV=production")
        return self

    @model_validator(mode="after")
    def _check_smtp(self) -> Settings:
        if self.smtp_host is None:
            return self
        if self.smtp_from is None:
            raise ValueError(
                "TESSERA_SMTP_FROM is required with TESSERA_SMTP_HOST: the sender address, "
                "such as no-reply@example.com"
            )
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError(
                "set both TESSERA_SMTP_USERNAME and TESSERA_SMTP_PASSWORD (or "
                "TESSERA_SMTP_PASSWORD_FILE), or neither"
            )
        if (
            self.production
            and self.smtp_security == "none"
            and not is_loopback_host(self.smtp_host)
        ):
            # Reset links (and the SMTP password) would cross the network in clear text.
            raise ValueError(
                "TESSERA_SMTP_SECURITY=none is refused with TESSERA_ENV=production unless "
                "TESSERA_SMTP_HOST is a loopback address; use starttls or tls"
            )
        return self

    @property
    def revocation_channel(self) -> str:
        """The Redis pub/sub channel of revocation wake-ups."""
        return f"{self.redis_prefix}:revocations"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def mail_enabled(self) -> bool:
        """Whether e-mail (and so password reset by e-mail) is configured."""
        return self.smtp_host is not None

    @property
    def db_url(self) -> str:
        return configured_or_sqlite(self.database_url, self.data_dir / "tessera.db")

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.db_url).get_backend_name() == "sqlite"

    @cached_property
    def master_key(self) -> bytes:
        """The 32-byte key-encryption key."""
        if self.secret_key is not None:
            raw = self.secret_key.get_secret_value()
        elif self.production:
            raise ConfigError(
                "TESSERA_SECRET_KEY (or TESSERA_SECRET_KEY_FILE) is required with "
                "TESSERA_ENV=production; create one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        else:
            raw = _dev_secret_key(self.data_dir / "secret.key")
        if len(raw) < 32:
            raise ConfigError("TESSERA_SECRET_KEY must have at least 32 characters")
        return derive_key(raw.encode("utf-8"), b"tessera key-encryption key")

    def subkey(self, purpose: str) -> bytes:
        """A key for one purpose, derived from the key-encryption key (HKDF-SHA256)."""
        return derive_key(self.master_key, purpose.encode("utf-8"))

    def redacted(self) -> dict[str, Any]:
        """The effective configuration with secrets hidden, for `tessera config show`."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url":
                value = make_url(self.db_url).render_as_string(hide_password=True)
            elif isinstance(value, SecretStr):
                value = "********"
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def check_database_url(url: str) -> None:
    """PostgreSQL (psycopg 3) or a SQLite file named by an absolute path: a relative one would
    depend on the folder a command runs in."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL; use postgresql://… or sqlite:////path") from None
    if parsed.drivername in _POSTGRES_DRIVERS:
        return
    if parsed.drivername != "sqlite":
        raise ValueError(
            f"{parsed.drivername} is not supported; use postgresql://… (or the default SQLite file)"
        )
    if parsed.host or not parsed.database or not Path(parsed.database).is_absolute():
        raise ValueError(
            "a SQLite URL needs an absolute path, with four slashes: sqlite:////srv/tessera.db"
        )


def check_mail_address(value: str) -> None:
    """One e-mail address, optionally with a name (`Name <addr>`), for a `From` or `To` header;
    no line breaks, which would let the value add headers."""
    if len(value) > 320:
        raise ValueError("at most 320 characters")
    found = getaddresses([value])
    local, _, domain = found[0][1].partition("@") if len(found) == 1 else ("", "", "")
    if "\r" in value or "\n" in value or not local or not domain or "@" in domain:
        raise ValueError("not one e-mail address; write no-reply@example.com or Name <addr>")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _dev_secret_key(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it a moment ago
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    warnings.warn(
        f"TESSERA_SECRET_KEY is not set: generated a development key in {path}. "
        "Set TESSERA_SECRET_KEY in production.",
        stacklevel=2,
    )
    return value


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raise `ConfigError` with a readable message on a bad value."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(err) for err in exc.errors())) from None
    except SettingsError as exc:  # a value that does not parse, e.g. a list not written in JSON
        field = re.search(r'field "(\w+)"', str(exc))
        where = f"TESSERA_{field.group(1).upper()}" if field else "a TESSERA_ variable"
        raise ConfigError(
            f'{where}: cannot parse the value; write a list in JSON, such as ["10.0.0.1"]'
        ) from None


def _describe(err: Any) -> str:
    """`TESSERA_FIELD: message`; errors of the whole model already name their variable."""
    message = str(err["msg"]).removeprefix("Value error, ")
    if not err["loc"]:
        return message
    return f"TESSERA_{'__'.join(str(p) for p in err['loc']).upper()}: {message}"
