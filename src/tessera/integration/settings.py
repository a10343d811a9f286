"""The integration service's configuration: `TESSERA_INTEGRATION_…` in the environment.

`…_FILE` variants read a secret from a file (Docker/Kubernetes secrets). The service is its own
process with its own database; it knows the identity domain only by its issuer URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tessera.shared.database_url import configured_or_sqlite
from tessera.shared.settings import check_issuer, read_secret_files

__all__ = ["DEFAULT_AUDIENCE", "IntegrationConfigError", "IntegrationSettings", "load_settings"]

DEFAULT_AUDIENCE = "https://integration.tessera.test"
_PREFIX = "TESSERA_INTEGRATION_"
_FILE_FIELDS = ("client_id", "client_secret", "database_url")


class IntegrationConfigError(ValueError):
    """The configuration cannot work; the message names the variable to set."""


class IntegrationSettings(BaseSettings):
    """Every field is `TESSERA_INTEGRATION_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="ignore", frozen=True)

    issuer: str
    audience: str = DEFAULT_AUDIENCE
    database_url: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    revocation: Literal["feed", "introspection", "none"] = "feed"
    # Seconds each long poll of the revocation feed may wait for news (latency is unaffected:
    # the identity domain answers as soon as an event exists).
    revocation_wait: float = Field(20.0, ge=0.5, le=60.0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        return read_secret_files(data, _PREFIX, _FILE_FIELDS, IntegrationConfigError)

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        return check_issuer(value)

    @property
    def db_url(self) -> str:
        return configured_or_sqlite(self.database_url, Path("./var/integration.db"))

    @property
    def client_credentials(self) -> tuple[str, str] | None:
        """The confidential app that follows revocations, when both halves are set."""
        if not self.client_id or self.client_secret is None:
            return None
        return self.client_id, self.client_secret.get_secret_value()


def load_settings(**overrides: Any) -> IntegrationSettings:
    """Read the environment; raise `IntegrationConfigError` with a readable message."""
    try:
        return IntegrationSettings(**overrides)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                message = "is required"
            where = "".join(str(p) for p in err["loc"]).upper()
            messages.append(f"{_PREFIX}{where}: {message}" if where else message)
        raise IntegrationConfigError("; ".join(messages)) from None
