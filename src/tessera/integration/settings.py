"""The integration service's configuration: `TESSERA_INTEGRATION_…` in the environment.

`…_FILE` variants read a secret from a file (Docker/Kubernetes secrets). The service is its own
process with its own database; it knows the identity domain only by its issuer URL.

`SECRET_KEY` (at least 32 characters) seals connection secrets at rest; without it a key is
generated once into `./var/integration-secret.key` (mode 0600), which suits one node only.
`EGRESS_ALLOW` lists the private addresses `invoke` steps may reach (see `egress`).

Step-up for management (RFC 9470): `MANAGE_ACR` (unset: off) is the authentication level the
routes that change integrations require (create, replace, delete, activate, deactivate; not
reading, monitoring or running flows), e.g. `urn:tessera:acr:mfa`: a known level is met by
itself or a higher one (`tessera.shared.acr`), several values may be given space-separated (any
one will do). `MANAGE_MAX_AGE` (seconds, unset: off) requires, on the same routes, a sign-in at
most that old. A token that falls short gets 401 `insufficient_user_authentication` with
`acr_values` / `max_age`, so `tessera call` and `tessera.client` sign in again and retry;
client-credentials tokens (no user) get the same answer.

Application roles (docs/groups-and-roles.md, `tessera.shared.integration_roles`):
`ENFORCE_ROLES` (default true) requires, besides the scope, one of Oracle Integration's roles
in the token's `roles` claim for each request (403 naming the roles otherwise); false checks
scopes only, for an identity provider that issues no `roles` claim.

DPoP (RFC 9449): a DPoP-bound token is accepted with a proof of its key per request. `PUBLIC_URL`
is the service's URL as clients call it (behind a reverse proxy: the proxy's; unset: the
request's scheme and `Host`); proofs must name it. Each proof is used once: in this process's
memory, or in Redis at `REDIS_URL` when several replicas serve the same URL. `DPOP_NONCES=true`
makes proofs carry the service's nonce (§9; replicas share them through `SECRET_KEY`).
`DPOP_REQUIRED=true` refuses Bearer tokens.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tessera.integration.egress import EgressError, EgressPolicy, parse_allow
from tessera.resource.dpop import DPoPPolicy, MemoryProofReplay, RedisProofReplay
from tessera.resource.stepup import AuthRequirement, requirement
from tessera.shared.database_url import configured_or_sqlite
from tessera.shared.dpop import NonceSource, ProofReplay
from tessera.shared.sealing import Sealer, derive_key
from tessera.shared.settings import check_issuer, read_secret_files

__all__ = ["DEFAULT_AUDIENCE", "IntegrationConfigError", "IntegrationSettings", "load_settings"]

DEFAULT_AUDIENCE = "https://integration.tessera.test"
_PREFIX = "TESSERA_INTEGRATION_"
_FILE_FIELDS = ("client_id", "client_secret", "database_url", "secret_key", "redis_url")
_DEV_KEY = Path("./var/integration-secret.key")


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
    secret_key: SecretStr | None = None
    # CIDRs and host[:port] entries `invoke` steps may reach besides global addresses.
    egress_allow: str = ""
    # RFC 9470 step-up for the routes that change integrations (see the module docstring).
    manage_acr: str | None = None
    manage_max_age: int | None = Field(None, ge=0, le=31_536_000)
    # Oracle Integration's application roles, besides scopes (see the module docstring).
    enforce_roles: bool = True
    # DPoP (see the module docstring).
    public_url: str | None = None
    redis_url: SecretStr | None = None
    dpop_nonces: bool = False
    dpop_required: bool = False

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        return read_secret_files(data, _PREFIX, _FILE_FIELDS, IntegrationConfigError)

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        return check_issuer(value)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_issuer(value.strip())  # an http(s) URL without query or fragment

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("use at least 32 characters")
        return value

    @field_validator("egress_allow")
    @classmethod
    def _check_egress_allow(cls, value: str) -> str:
        try:
            parse_allow(value)
        except EgressError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("manage_acr")
    @classmethod
    def _check_manage_acr(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        requirement(value)  # printable ASCII values without quotes
        return " ".join(value.split())

    @property
    def manage_requirement(self) -> AuthRequirement:
        """What managing integrations asks of the user's sign-in (empty: nothing)."""
        return requirement(self.manage_acr, self.manage_max_age)

    @property
    def token_endpoint(self) -> str:
        """The issuer's token endpoint (Tessera's path under the issuer): where an
        `oauth_token_exchange` sends the caller's token, and nowhere else."""
        return self.issuer + "/oauth2/v1/token"

    @property
    def egress_policy(self) -> EgressPolicy:
        return parse_allow(self.egress_allow)

    @cached_property
    def dpop_policy(self) -> DPoPPolicy:
        """How DPoP proofs are checked: replay memory, nonces, public URL, requirement."""
        replay: ProofReplay = MemoryProofReplay()
        if self.redis_url is not None:
            replay = RedisProofReplay.from_url(
                self.redis_url.get_secret_value(), prefix="tessera:integration:"
            )
        nonces = None
        if self.dpop_nonces:
            raw = self.secret_key.get_secret_value() if self.secret_key else _dev_secret_key()
            nonces = NonceSource(derive_key(raw.encode("utf-8"), b"tessera integration nonces"))
        return DPoPPolicy(
            replay=replay, nonces=nonces, required=self.dpop_required, public_url=self.public_url
        )

    @cached_property
    def sealer(self) -> Sealer:
        """Seals connection secrets at rest, under a key derived from `SECRET_KEY`."""
        raw = self.secret_key.get_secret_value() if self.secret_key else _dev_secret_key()
        return Sealer(derive_key(raw.encode("utf-8"), b"tessera integration connection secrets"))

    @property
    def db_url(self) -> str:
        return configured_or_sqlite(self.database_url, Path("./var/integration.db"))

    @property
    def client_credentials(self) -> tuple[str, str] | None:
        """The confidential app that follows revocations, when both halves are set."""
        if not self.client_id or self.client_secret is None:
            return None
        return self.client_id, self.client_secret.get_secret_value()


def _dev_secret_key() -> str:
    """The generated key of a single-node installation, created on first use (mode 0600)."""
    if _DEV_KEY.exists():
        return _DEV_KEY.read_text(encoding="utf-8").strip()
    _DEV_KEY.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(_DEV_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


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
